"""Policies: none, random, oracle, the SPEC registry, and the HF policy on the tiny model."""

from __future__ import annotations

import re

import pytest
from latent_env.agents import Policy, PolicyError, PolicySpecError, make_policy, split_options
from latent_env.agents.hf import HFPolicy, _cut_at_done, _generated_lengths, done_stopping_criteria
from latent_env.agents.openai import OpenAIPolicy
from latent_env.agents.simple import NUMBER, NonePolicy, OraclePolicy, RandomPolicy, observed_text
from latent_env.agents.tree import TreePolicy

from latent_env.actions import parse_action
from latent_env.env import LatentEnv
from latent_env.tasks import FOUNDING_TASK, Task, make_suite
from latent_env.tools.registry import load_tools

TASKS = make_suite("synthetic-small", "test", n_per_family=2)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run the module's models on one torch thread, then restore the setting.

    On a loaded 2-core machine two OpenMP threads stall on every small op (a tiny-model
    ``generate`` measured 45x slower); ``LATENT_ENV_THREADS`` is what ``load_model`` applies.
    Other test modules import this fixture.
    """
    import torch

    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LATENT_ENV_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def observations() -> list[str]:
    env = LatentEnv(tasks=TASKS, model="tiny-random", tools=["calc"])
    return [env.new_episode(task).prompt for task in TASKS]


# ---- none / random / oracle --------------------------------------------------------------------


def test_none_policy_writes_nothing(observations):
    policy = make_policy("none")
    assert isinstance(policy, NonePolicy) and isinstance(policy, Policy)
    assert policy.act_batch(observations[:3]) == ["", "", ""]
    assert policy.act_batch([]) == []


def test_observed_text_is_the_text_block_not_the_instructions(observations):
    assert observed_text(observations[0]) == TASKS[0].context
    assert observed_text("no block here") == "no block here"


def test_random_policy_is_seeded(observations):
    policy = make_policy("random")
    policy.reset(7)
    first = policy.act_batch(observations)
    policy.reset(7)
    assert policy.act_batch(observations) == first
    policy.reset(8)
    assert policy.act_batch(observations) != first


@pytest.mark.parametrize("spec", ["random", "hf:tiny-random?temperature=1.0&max_new_tokens=3",
                                  "tree:hf:tiny-random?k=2&depth=1&max_new_tokens=3"])
def test_a_restored_state_continues_the_random_stream(spec, observations):
    # bench --resume continues a policy mid-run from its state after the last saved batch.
    import json

    first, later = observations[:2], observations[2:4]
    policy = make_policy(spec, tools={})
    policy.reset(5)
    policy.act_batch(first)
    state = json.loads(json.dumps(policy.get_state()))  # as the checkpoint stores it
    expected = policy.act_batch(later)
    fresh = make_policy(spec, tools={})
    fresh.reset(5)
    fresh.set_state(state)
    assert fresh.act_batch(later) == expected
    fresh.reset(5)
    assert fresh.act_batch(later) != expected  # the state mattered: a bare reset differs


def test_stateless_policies_say_so():
    for spec in ("none", "oracle", "openai:http://127.0.0.1:1/v1#m"):
        assert make_policy(spec).get_state() == {}


def test_random_blocks_are_well_formed_and_use_the_texts_numbers(observations):
    policy = RandomPolicy(tools=["python", "calc"], seed=1)
    seen_kinds = set()
    for obs in observations * 3:
        action = policy.act_batch([obs])[0]
        parsed = parse_action(action, ["python", "calc"])
        assert parsed.well_formed and not parsed.errors, action
        numbers_in_text = set(NUMBER.findall(observed_text(obs)))
        for seg in parsed.segments:
            seen_kinds.add(seg.tag)
            body = seg.text.removeprefix("print(").removeprefix("Combine the numbers: ")
            if numbers_in_text:  # (a text without numbers gets random small integers)
                assert set(NUMBER.findall(body)) <= numbers_in_text, (action, numbers_in_text)
    assert seen_kinds == {"python", "calc", "reason"}


def test_random_blocks_run_without_tool_errors(observations):
    tools = load_tools(["calc"])
    policy = RandomPolicy(tools=tools, seed=2)
    for action in policy.act_batch(observations * 2):
        for seg in parse_action(action, tools).tool_segments:
            out = tools["calc"].run(seg.text)
            assert out.ok, (seg.text, out.output)


def test_random_policy_only_writes_blocks_of_tools_the_env_has(observations):
    policy = make_policy("random", tools={"calc": object()})
    policy.reset(0)
    actions = policy.act_batch(observations * 3)
    assert not any("<python>" in a for a in actions)
    assert any("<calc>" in a for a in actions)


def test_random_policy_without_numbers_still_writes_blocks():
    policy = RandomPolicy(seed=0)
    action = policy.act_batch(["<text>No digits at all.</text>"])[0]
    assert parse_action(action, ["python", "calc"]).well_formed


def test_oracle_runs_the_gold_program_and_needs_tasks(observations):
    policy = make_policy("oracle")
    assert isinstance(policy, OraclePolicy)
    no_program = Task(id="x", context="Hello", continuation=" world")
    actions = policy.act_batch([observations[0], "obs"], tasks=[FOUNDING_TASK, no_program])
    assert actions == [f"<python>{FOUNDING_TASK.program}</python>", ""]
    with pytest.raises(PolicyError, match="needs the tasks"):
        policy.act_batch([observations[0]])


# ---- SPEC parsing ------------------------------------------------------------------------------


def test_split_options_takes_only_a_trailing_query():
    assert split_options("hf:default?temperature=0.7&max_new_tokens=96") == (
        "hf:default",
        {"temperature": "0.7", "max_new_tokens": "96"},
    )
    assert split_options("random") == ("random", {})
    url = "openai:http://h/v1?key=a/b#m"  # not key=value pairs only: part of the spec
    assert split_options(url) == (url, {})


def test_make_policy_builds_every_family():
    hf = make_policy("hf:tiny-random?temperature=0.7&max_new_tokens=12")
    assert isinstance(hf, HFPolicy) and hf.temperature == 0.7 and hf.max_new_tokens == 12
    assert hf.name == "hf:tiny-random?temperature=0.7&max_new_tokens=12"
    hf = make_policy("hf:tiny-random?max_new_tokens=12", max_new_tokens=5, temperature=None)
    assert hf.max_new_tokens == 5 and hf.temperature == 0.0  # kwargs override, None ignored
    oa = make_policy("openai:http://127.0.0.1:8000/v1#qwen?timeout=2.5&retries=0")
    assert isinstance(oa, OpenAIPolicy)
    assert (oa.url, oa.model, oa.timeout, oa.retries) == (
        "http://127.0.0.1:8000/v1/chat/completions",
        "qwen",
        2.5,
        0,
    )
    tree = make_policy("tree:hf:tiny-random?k=3&depth=1&max_new_tokens=7", tools={})
    assert isinstance(tree, TreePolicy) and (tree.k, tree.depth) == (3, 1)
    assert tree.base.max_new_tokens == 7 and tree.name.startswith("tree:hf:tiny-random")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty policy SPEC"),
        ("gpt4", "unknown policy"),
        ("none:extra", "takes no argument"),
        ("random?speed=2", "unknown option 'speed'"),
        ("hf:default?max_new_tokens=many", "not a valid int"),
        ("hf:default?temperature=-1", "temperature must be >= 0"),
        ("hf:./no/such/checkpoint", "no such model directory"),
        ("openai:http://127.0.0.1:8000/v1", "expected openai:BASE_URL#MODEL"),
        ("openai:ftp://host#m", "must start with http"),
        ("tree:none", "cannot sample"),
        ("tree:", "needs a base policy"),
    ],
)
def test_bad_specs_are_user_errors(spec, message):
    with pytest.raises(PolicySpecError, match=re.escape(message)):
        make_policy(spec)


# ---- hf on the tiny random model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_hf(tiny) -> HFPolicy:
    return HFPolicy("tiny-random", max_new_tokens=6, batch_size=4, loaded=tiny)


def test_hf_policy_returns_one_string_per_observation(tiny_hf, observations):
    actions = tiny_hf.act_batch(observations[:5])
    assert len(actions) == 5 and all(isinstance(a, str) for a in actions)
    assert tiny_hf.act_batch(observations[:5]) == actions  # greedy: deterministic


def test_hf_left_padding_gives_the_same_result_as_one_by_one(tiny_hf, observations):
    # Observations of different lengths share a padded batch; with correct left padding and
    # attention masks each row's log-probs match its unbatched run.
    batch = [observations[0], observations[5], "<text>short</text>"]
    together = tiny_hf.sample(batch, 1, 0.0)
    for obs, got in zip(batch, together):
        alone = tiny_hf.sample([obs], 1, 0.0)[0][0]
        assert got[0].text == alone.text
        assert got[0].mean_logprob == pytest.approx(alone.mean_logprob, abs=1e-4)
        assert got[0].mean_logprob < 0


def test_hf_sampling_is_seeded_and_returns_n_per_observation(tiny_hf, observations):
    tiny_hf.reset(3)
    first = tiny_hf.sample(observations[:2], 3, 1.0)
    assert [len(group) for group in first] == [3, 3]
    assert len({s.text for s in first[0]}) > 1  # random weights, temperature 1: they differ
    tiny_hf.reset(3)
    assert tiny_hf.sample(observations[:2], 3, 1.0) == first
    tiny_hf.reset(4)
    assert tiny_hf.sample(observations[:2], 3, 1.0) != first


def test_hf_greedy_sampling_repeats_the_one_greedy_answer(tiny_hf, observations):
    groups = tiny_hf.sample(observations[:2], 3, 0.0)
    assert [len(g) for g in groups] == [3, 3] and all(len(set(g)) == 1 for g in groups)


def test_hf_prompt_uses_the_chat_template(tiny_hf):
    prompt = tiny_hf.prompts(["hello"])[0]
    assert "<|im_start|>user\nhello<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_hf_output_is_cut_after_done():
    assert _cut_at_done("  <calc>1+1</calc><done/> and more ") == "<calc>1+1</calc><done/>"
    assert _cut_at_done("<calc>2</calc>\n") == "<calc>2</calc>"


def test_generation_stops_each_row_at_done(tiny):
    import torch

    _, tokenizer = tiny
    encode = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    prompt = encode("Write <done/> at the end:")
    (stop,) = done_stopping_criteria(tokenizer, prompt_length=len(prompt))

    def stops(generated: str) -> bool:
        return bool(stop(torch.tensor([prompt + encode(generated)]), None)[0])

    assert stops(" <calc>1</calc><done/>")
    assert not stops(" <calc>1</calc><done")
    assert not stops(" x")  # the <done/> in the prompt does not count


def test_generated_lengths_stop_at_end_of_sequence():
    rows = [[5, 6, 2, 2], [7, 8, 9, 10], [2, 2, 2, 2]]
    assert _generated_lengths(rows, {2}) == [2, 4, 0]


def test_hf_policy_that_cannot_load_fails_with_policy_error():
    policy = HFPolicy("no-such-org/no-such-model-xyz", max_new_tokens=2)
    with pytest.raises(PolicyError, match="could not load the model"):
        policy.act_batch(["hi"])
