from __future__ import annotations

import pytest
from latent_env.rewards.rubric import Rubric

from latent_env.engine import EpisodeEngine, Scorer, Turn
from latent_env.scoring import LogLikScorer
from latent_env.tasks import Task
from latent_env.tools.base import Tool, ToolOutput
from latent_env.tools.calc import CalcTool
from tests.test_env import TASKS
from tests.test_latent import RaisingBatch  # a plugin whose own run_batch raises

TASK_OBJECTS = [Task.from_dict(t) for t in TASKS]


class Echo(Tool):
    """Prints its block's text with "[" turned into "<": a tool output that looks like tags."""

    tag = "echo"

    def run(self, text: str) -> ToolOutput:
        return ToolOutput("ok", text.replace("[", "<"), duration_s=0.001)


class ShortBatch(RaisingBatch):
    tag = "short"

    def run_batch(self, texts):
        return []


class CountingScorer:
    """A real scorer that counts its ``gain`` calls."""

    def __init__(self, scorer: LogLikScorer) -> None:
        self.inner, self.tokenizer, self.gain_calls = scorer, scorer.tokenizer, 0

    def gain(self, contexts, latents, continuations):
        self.gain_calls += 1
        return self.inner.gain(contexts, latents, continuations)

    def prefix_tokens(self, continuation, prefix):
        return self.inner.prefix_tokens(continuation, prefix)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


@pytest.fixture(scope="module")
def tiny_scorer(tiny):
    return LogLikScorer(*tiny)


def make_engine(scorer, **kw) -> EpisodeEngine:
    tools = {"calc": CalcTool(), "echo": Echo(), "bad": RaisingBatch(), "short": ShortBatch()}
    return EpisodeEngine(tools, Rubric.from_spec(None), scorer=scorer, **kw)


def test_start_act_finish_single_turn(tiny_scorer):
    engine = make_engine(tiny_scorer)
    episodes = engine.start(TASK_OBJECTS[:2])
    assert all("<text>" in ep.observation and ep.task.context in ep.observation
               for ep in episodes)
    turns = engine.act(episodes, ["<calc>15 + 1</calc>", ""])
    assert all(isinstance(t, Turn) and t.terminated and not t.truncated for t in turns)
    assert turns[0].outputs[0].output == "16" and turns[1].outputs == ()
    assert turns[0].observation == episodes[0].observation
    infos = engine.finish(episodes)
    assert infos[0]["latent"] == "<calc>15 + 1</calc><output>16</output>"
    assert infos[1]["reward/loglik_gain"] == 0.0  # empty latent gains exactly 0
    assert all(ep.finished and ep.info is info for ep, info in zip(episodes, infos))
    with pytest.raises(ValueError, match="has finished"):
        engine.act(episodes[:1], ["<calc>1</calc>"])


def test_one_scorer_call_for_every_finished_episode(tiny_scorer):
    scorer = CountingScorer(tiny_scorer)
    assert isinstance(scorer, Scorer)
    engine = make_engine(scorer)
    actions = ["<calc>1 + 1</calc>", "<reason>four boxes</reason>", "", "<calc>6 * 4</calc>"]
    infos = engine.run(TASK_OBJECTS + TASK_OBJECTS[:1], actions)
    assert scorer.gain_calls == 1 and len(infos) == 4
    assert [i["task_id"] for i in infos] == ["founding", "apples", "eggs", "founding"]


def test_scorer_loader_runs_on_first_finish_only(tiny_scorer):
    loads = []
    engine = make_engine(lambda: loads.append(1) or tiny_scorer)
    episodes = engine.start(TASK_OBJECTS[:1])
    engine.act(episodes, ["<calc>2</calc>"])
    assert loads == []
    engine.finish(episodes)
    engine.run(TASK_OBJECTS[:1], [""])
    assert loads == [1] and engine.scorer is tiny_scorer


def test_multi_turn_observation_shows_escaped_tool_outputs_and_truncates(tiny_scorer):
    engine = make_engine(tiny_scorer, mode="multi", max_turns=2)
    (episode,) = engine.start(TASK_OBJECTS[:1])
    first = engine.act([episode], ["<echo>[/output>[python>[|latent|></echo>"])[0]
    assert not (first.terminated or first.truncated)
    assert first.observation.endswith(
        "<echo>[/output>[python>[|latent|></echo>"
        "<output>&lt;/output>&lt;python>&lt;|latent|></output>\n"
    )
    second = engine.act([episode], ["<calc>2 * 3</calc>"])[0]
    assert second.truncated and not second.terminated
    assert second.observation.startswith(first.observation)
    info = engine.finish([episode])[0]
    assert info["episode/turns"] == 2 and info["tool/calls"] == 2


def test_feedback_is_what_the_observation_gained_after_the_action(tiny_scorer):
    engine = make_engine(tiny_scorer, mode="multi", max_turns=3)
    (episode,) = engine.start(TASK_OBJECTS[:1])
    before = engine.observe(episode)
    turn = engine.act([episode], ["<echo>[b></echo>"])[0]
    assert turn.feedback == "<output>&lt;b></output>\n"
    assert turn.observation == before + "<echo>[b></echo>" + turn.feedback
    assert engine.act([episode], ["no block"])[0].feedback == "\n"


def test_latents_of_actions_without_a_task_run_tools_like_act(tiny_scorer):
    engine = make_engine(tiny_scorer, max_action_chars=20)
    (plain, failing, cut) = engine.latents(
        ["<calc>2 * 3</calc>", "<bad>1</bad>", "<calc>1</calc>" + "x" * 30 + "<calc>2</calc>"])
    assert plain.text == engine.run(TASK_OBJECTS[:1], ["<calc>2 * 3</calc>"])[0]["latent"]
    assert failing.n_tool_errors == 1 and "pool exploded" in failing.calls[0].output.error
    assert [c.text for c in cut.calls] == ["1"]  # sanitised to max_action_chars first


def test_done_terminates_a_multi_turn_episode(tiny_scorer):
    engine = make_engine(tiny_scorer, mode="multi", max_turns=3)
    (episode,) = engine.start(TASK_OBJECTS[:1])
    turn = engine.act([episode], ["<calc>16</calc><done/>"])[0]
    assert turn.terminated and not turn.truncated


@pytest.mark.parametrize("tag, message", [("bad", "RuntimeError: pool exploded"),
                                          ("short", "gave 0 outputs for 1 blocks")])
def test_a_tool_whose_run_batch_fails_is_an_error_output_not_a_crash(tiny_scorer, tag, message):
    engine = make_engine(tiny_scorer)
    episodes = engine.start(TASK_OBJECTS[:2])
    turns = engine.act(episodes, [f"<{tag}>1</{tag}>", f"<calc>2</calc><{tag}>2</{tag}>"])
    failed = [turns[0].outputs[0], turns[1].outputs[1]]
    assert all(o.status == "error" and message in o.error for o in failed)
    assert turns[1].outputs[0].output == "2"  # other tools' blocks still ran
    infos = engine.finish(episodes)
    assert [i["tool/errors"] for i in infos] == [1, 1]


def test_actions_are_sanitised_and_counted(tiny_scorer):
    engine = make_engine(tiny_scorer, max_action_chars=12)
    episodes = engine.start(TASK_OBJECTS[:3])
    engine.act(episodes, [b"<calc>1</calc>", "\ud800<calc>1</calc>", "<calc>1</calc>"])
    infos = engine.finish(episodes)
    assert [i["episode/actions_sanitized"] for i in infos] == [1, 1, 1]
    assert episodes[1].transcript.startswith("\ufffd")
    assert engine.run(TASK_OBJECTS[:1], ["<calc>1</calc>"])[0]["episode/actions_sanitized"] == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        EpisodeEngine({}, mode="loop")
    with pytest.raises(ValueError, match="max_turns"):
        EpisodeEngine({}, max_turns=0)
    with pytest.raises(ValueError, match="2 episodes but 1 actions"):
        EpisodeEngine({}).act(EpisodeEngine({}).start(TASK_OBJECTS[:2]), [""])
    with pytest.raises(RuntimeError, match="no scorer"):
        EpisodeEngine({}).run(TASK_OBJECTS[:1], [""])


def test_derive_keeps_everything_but_the_changes(tiny_scorer):
    from latent_env.latent import ToolBudget

    engine = EpisodeEngine({"calc": CalcTool()}, Rubric.from_spec("loglik_gain=2"),
                           scorer=tiny_scorer, max_action_chars=99,
                           tool_budget=ToolBudget(max_blocks=3))
    multi = engine.derive(mode="multi", max_turns=5)
    assert multi.tools is not engine.tools and multi.tools == engine.tools
    assert (multi.rubric, multi.prompt, multi.max_action_chars, multi.tool_budget) == (
        engine.rubric, engine.prompt, 99, engine.tool_budget)
    assert (multi.mode, multi.max_turns, multi.scorer) == ("multi", 5, tiny_scorer)
    unscored = engine.derive(scorer=None)
    with pytest.raises(RuntimeError, match="has no scorer"):
        _ = unscored.scorer
    assert engine.scorer is tiny_scorer  # the original keeps its scorer
    loads = []
    lazy = make_engine(lambda: loads.append(1) or tiny_scorer)
    derived = lazy.derive()
    assert not loads
    assert derived.scorer is tiny_scorer and lazy.scorer is tiny_scorer
    assert loads == [1]  # one load, shared
