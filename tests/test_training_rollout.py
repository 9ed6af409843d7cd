"""Multi-turn rollouts: tools run when a block closes, outputs are appended and masked, the
episode ends where it should, and GRPO trains on it through ``rollout_func``.

The policy is the tiny random model under transformers' real ``generate``, steered by a logits
processor that forces scripted chunks, so the stopping, padding and masking are the real ones.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from latent_env.env import LatentEnv, as_task
from latent_env.scoring import LogLikScorer
from latent_env.training.reward import EnvReward, bind
from latent_env.training.rollout import (
    MultiTurnRollout,
    multi_turn_engine,
    play,
    prompt_token_ids,
)
from tests.test_env import TASKS

APPLES, EGGS = as_task(TASKS[1]), as_task(TASKS[2])


class Force(LogitsProcessor):
    """Row r writes ``tokens[r]`` from the call's first new position on, then end-of-sequence."""

    def __init__(self, tokens: list[list[int]], width: int, eos: int) -> None:
        self.tokens, self.width, self.eos = tokens, width, eos

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.width
        forced = torch.full_like(scores, float("-inf"))
        for row, tokens in enumerate(self.tokens):
            forced[row, tokens[step] if step < len(tokens) else self.eos] = 0.0
        return forced


def scripted(model, tokenizer, scripts: dict[tuple[int, ...], list[str]]):
    """``model.generate`` writing, for the prompt whose ids start a row, that prompt's next
    scripted chunk (one chunk per call; ``<eos>`` in a chunk is the end-of-sequence token)."""
    real = model.generate
    calls = {key: 0 for key in scripts}
    eos = tokenizer.eos_token_id

    def encode(chunk: str) -> list[int]:
        text, end, _ = chunk.partition("<eos>")
        return tokenizer(text, add_special_tokens=False)["input_ids"] + ([eos] if end else [])

    def generate(*, input_ids, attention_mask, **kwargs):
        rows, seen = [], set()
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            context = tuple(t for t, m in zip(ids, mask) if m)
            key = next(k for k in scripts if context[: len(k)] == k)
            rows.append(encode(scripts[key][calls[key]]))
            seen.add(key)
        for key in seen:
            calls[key] += 1
        force = Force(rows, input_ids.shape[1], eos)
        return real(input_ids=input_ids, attention_mask=attention_mask,
                    logits_processor=LogitsProcessorList([force]), **kwargs)

    return generate


@pytest.fixture(scope="module")
def env(tiny):
    env = LatentEnv(tasks=TASKS, scorer=LogLikScorer(*tiny), tools=["calc"])
    yield env
    env.close()


def greedy(tokenizer) -> GenerationConfig:
    # pad == eos, as for the default tokenizer: a row stopped at a closing tag is padded with
    # end-of-sequence tokens that must not count as its own.
    return GenerationConfig(do_sample=False, pad_token_id=tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id)


def run(env, tiny, scripts_by_task, max_turns=4, max_new_tokens=64):
    model, tokenizer = tiny
    engine = multi_turn_engine(env.engine, max_turns)
    tasks = list(scripts_by_task)
    prompts = [[{"role": "user", "content": ep.prompt}] for ep in engine.start(tasks)]
    prompt_ids = [prompt_token_ids(tokenizer, p) for p in prompts]
    scripts = {tuple(ids): scripts_by_task[t] for ids, t in zip(prompt_ids, tasks)}

    class Policy:  # the tiny model, its generate scripted
        device = model.device
        generate = staticmethod(scripted(model, tokenizer, scripts))

    rollouts = play(Policy(), tokenizer, engine, engine.start(tasks), prompt_ids,
                    greedy(tokenizer), max_new_tokens)
    return rollouts, tokenizer


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_a_tool_block_runs_when_it_closes_and_its_output_is_masked(env, tiny):
    (r,), tok = run(env, tiny, {APPLES: ["<calc>12 + 7</calc>", " then<eos>"]})
    block, output, then = (ids(tok, "<calc>12 + 7</calc>"), ids(tok, "<output>19</output>\n"),
                           ids(tok, " then"))
    assert r.completion_ids == block + output + then + [tok.eos_token_id]
    assert r.env_mask == [1] * len(block) + [0] * len(output) + [1] * (len(then) + 1)
    assert r.ended == "eos" and r.episode.turns == 2
    assert [c.output.output for c in r.episode.latent.calls] == ["19"]
    assert r.episode.transcript.startswith("<calc>12 + 7</calc><output>19</output>\n then")


def test_rows_end_apart_in_one_batch(env, tiny):
    # The eggs row stops at </calc> while apples writes on; then apples ends and eggs goes on.
    rollouts, tok = run(env, tiny, {
        APPLES: ["no tool, just words here<eos>"],
        EGGS: ["<calc>6 * 4</calc>", "<done/>"],
    })
    apples, eggs = rollouts
    assert apples.ended == "eos" and apples.episode.turns == 1 and 0 not in apples.env_mask
    assert eggs.ended == "done" and eggs.episode.turns == 2
    assert tok.decode(eggs.completion_ids) == "<calc>6 * 4</calc><output>24</output>\n<done/>"
    assert eggs.env_mask.count(0) == len(ids(tok, "<output>24</output>\n"))


def test_max_turns_and_the_token_budget_end_an_episode(env, tiny):
    chunks = ["<calc>1</calc>", "<calc>2</calc>", "<calc>3</calc>"]
    (r,), tok = run(env, tiny, {APPLES: chunks}, max_turns=2)
    assert r.ended == "max_turns" and r.episode.turns == 2
    assert [c.output.output for c in r.episode.latent.calls] == ["1", "2"]
    assert tok.decode(r.completion_ids) == "<calc>1</calc><output>1</output>\n<calc>2</calc>"

    (r,), tok = run(env, tiny, {APPLES: ["<calc>" + "1 + " * 20 + "1</calc>"]}, max_new_tokens=9)
    assert r.ended == "length" and len(r.completion_ids) == 9
    assert r.episode.latent.n_tool_errors == 1  # the block never closed

    # Room for the first output but not for one more token after it: the output is not shown.
    block = ids(tok, "<calc>12 + 7</calc>")
    room = len(block) + len(ids(tok, "<output>19</output>\n"))
    (r,), _ = run(env, tiny, {APPLES: ["<calc>12 + 7</calc>"]}, max_new_tokens=room)
    assert r.ended == "length" and r.completion_ids == block
    assert [c.output.output for c in r.episode.latent.calls] == ["19"]


def test_an_end_of_sequence_right_after_an_output_is_no_action(env, tiny):
    (r,), _ = run(env, tiny, {APPLES: ["<calc>12 + 7</calc>", "<eos>"]})
    assert r.ended == "eos" and r.episode.turns == 1
    (r,), _ = run(env, tiny, {APPLES: ["<eos>"]})
    assert r.ended == "eos" and r.episode.turns == 1  # an empty first action still counts


def test_the_reward_scores_played_episodes_whole_and_bound_to_their_rows(env, tiny):
    rollouts, _ = run(env, tiny, {APPLES: ["<calc>12 + 7</calc>", "<eos>"],
                                  EGGS: ["<calc>6 * 4</calc>", "<eos>"]})
    reward = EnvReward(env, term="loglik_gain")
    paid = reward(["p", "p"], ["ignored", "ignored"], task=[TASKS[1], TASKS[2]],
                  episode=[r.episode for r in rollouts])
    single = EnvReward(env, term="loglik_gain")(
        ["p", "p"], ["<calc>12 + 7</calc>", "<calc>6 * 4</calc>"], task=[TASKS[1], TASKS[2]])
    assert paid == pytest.approx(single, abs=1e-5)  # the same latent, the same gain
    assert [i["episode/turns"] for i in reward.last_infos] == [1, 1]
    with pytest.raises(ValueError, match="another text"):
        bind(rollouts[0].episode, EGGS)


def test_the_rollout_refuses_prompts_of_unknown_tasks(env):
    rollout = MultiTurnRollout(multi_turn_engine(env.engine, 2), [APPLES])
    with pytest.raises(KeyError, match="none of its tasks"):
        rollout([[{"role": "user", "content": "something else"}]], trainer=None)
    with pytest.raises(ValueError, match="multi mode"):
        MultiTurnRollout(env.engine, [APPLES])


def test_grpo_trains_on_multi_turn_episodes_with_outputs_masked(env, tiny, tmp_path):
    import copy

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from latent_env.training.data import rl_records
    from latent_env.training.rl import multi_turn_rollout, reward_functions

    _, tokenizer = tiny
    model = copy.deepcopy(tiny[0])
    records = rl_records(env, [APPLES, EGGS])
    prompt_ids = [tuple(prompt_token_ids(tokenizer, r["prompt"])) for r in records]
    model.generate = scripted(model, tokenizer, {
        prompt_ids[0]: ["<calc>12 + 7</calc>", "<eos>"] * 4,
        prompt_ids[1]: ["<calc>6 * 4</calc>", " so<eos>"] * 4,
    })
    funcs, weights = reward_functions(env)
    config = GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4,
                        num_generations=2, max_completion_length=32, report_to=[],
                        use_cpu=True, logging_steps=1, save_strategy="no", beta=0.0,
                        reward_weights=weights)
    rollout = multi_turn_rollout(env, records, turns=3)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=config,
                          train_dataset=Dataset.from_list(records), processing_class=tokenizer,
                          rollout_func=rollout)
    # The rollout reads its prompts as TRL's own generation would have tokenised them.
    assert [list(ids) for ids in trainer._tokenize_prompts([records[0]["prompt"]])[0]] == [
        prompt_token_ids(tokenizer, records[0]["prompt"], trainer)]
    batch = [dict(records[0]), dict(records[0]), dict(records[1]), dict(records[1])]
    out = trainer._generate_and_score_completions(batch)
    # TRL took env_mask as its tool mask: the loss skips exactly the output tokens.
    for row, played in zip(out["tool_mask"], rollout.last):
        assert row[: len(played.env_mask)].tolist() == played.env_mask
        assert 0 in played.env_mask
    infos = funcs[0].last_infos
    assert [i["task_id"] for i in infos] == ["apples"] * 2 + ["eggs"] * 2
    assert all(i["tool/calls"] == 1 and i["tool/errors"] == 0 for i in infos)
    trainer.train()
    assert trainer.state.global_step == 1
    logged = {k for h in trainer.state.log_history for k in h}
    assert {"rewards/env_reward/mean", "rewards/tool_error/mean"} <= logged


def test_a_latent_thought_policy_plays_multi_turn_episodes(env):
    from tests.test_thoughts_model import build

    model, tokenizer = build()
    model.eval()
    thinking = tokenizer.convert_tokens_to_ids("<thinking>")
    engine = multi_turn_engine(env.engine, 3)
    (episode,) = engine.start([APPLES])
    prompt = prompt_token_ids(tokenizer, [{"role": "user", "content": episode.prompt}])
    model.generate = scripted(model, tokenizer, {
        tuple(prompt): ["<thinking><thinking><calc>12 + 7</calc>", "<eos>"]})
    (r,) = play(model, tokenizer, engine, [episode], [prompt], greedy(tokenizer), 48)
    # The continuous-thought positions are the policy's own tokens; the tool still ran once.
    assert r.completion_ids[:2] == [thinking, thinking] and r.env_mask[:2] == [1, 1]
    assert r.ended == "eos" and [c.output.output for c in r.episode.latent.calls] == ["19"]
