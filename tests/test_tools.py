from __future__ import annotations

import subprocess
import sys

import pytest

from latent_env.tools import Tool, ToolOutput, ToolRegistryError, available_tools, load_tools
from latent_env.tools.calc import CalcTool
from latent_env.tools.predict import PredictTool


@pytest.mark.parametrize(
    "text, expected",
    [
        ("(15 + 16 + 17) / 3", "16"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** 10", "1024"),
        ("x = 12\nx * 3", "36"),
        ("mean(15, 16, 17); max(3, 9)", "16\n9"),
        ("sqrt(16) + factorial(5)", "124"),
        ("7 // 2; 7 % 2", "3\n1"),
        ("round(12345, -2); round(2.675, 1); round(7.5)", "12300\n2.7\n8"),
    ],
)
def test_calc_evaluates(text, expected):
    out = CalcTool().run(text)
    assert out.status == "ok" and out.output == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("1/0", "ZeroDivisionError"),
        ("__import__('os')", "unknown function"),
        ("(1).__class__", "unsupported syntax"),
        ("2 ** 10 ** 9", "exponent larger"),
        ("factorial(10**8)", "factorial needs"),
        ("open('x')", "unknown function"),
        ("[1, 2]", "lists are not"),
        ("", "empty calc block"),
        ("y + 1", "unknown name 'y'"),
        ("1 +", "SyntaxError"),
        # Each of these held the trainer's GIL for seconds before it was bounded.
        ("round(1, -10**7)", "round's digits"),
        ("round(1, 10**7)", "round's digits"),
        ("round(2.5, 0.5)", "round's digits"),
        ("1" + "0" * 301, "result too large"),
    ],
)
def test_calc_refuses_without_executing(text, message):
    out = CalcTool().safe_run(text)
    assert out.status == "error" and message in out.output


def test_predict_linear_trend_with_interval():
    text = "2019: 100\n2020: 110\n2021: 121\n2022: 129\nat: 2023"
    out = PredictTool().run(text)
    assert out.status == "ok"
    assert "prediction at 2023: 139" in out.output and "95% interval" in out.output


def test_predict_other_models():
    assert "mean of 3 values: 16" in PredictTool().run("values: 15, 16, 17\nmodel: mean").output
    assert "median" in PredictTool().run("values: 1, 2, 100\nmodel: median").output
    growth = PredictTool().run("values: 2, 4, 8, 16\nmodel: growth").output
    assert "×2 per step" in growth and "prediction at 5: 32" in growth


@pytest.mark.parametrize("text", ["values: 1", "hello", "values: 1,2\nmodel: neural"])
def test_predict_bad_input_is_an_error_output(text):
    out = PredictTool().run(text)
    assert out.status == "error" and out.output.startswith("Error:")


def test_predict_reads_a_long_line_in_linear_time():
    # The key regex once backtracked quadratically: 1.2 s for 16,000 characters, so ~3 minutes
    # for these 200,000; linear, it takes milliseconds.
    import time

    from latent_env.tools.predict import KEY_LINE

    started = time.perf_counter()
    assert KEY_LINE.match("values: 1" + " " * 200_000 + "x")
    assert time.perf_counter() - started < 5.0
    out = PredictTool().run("values: 1, 2, 3   \nat: 4  \nmodel:  linear ")
    assert out.status == "ok" and "4" in out.output


def test_builtins_register_through_the_entry_point_group():
    installed = available_tools()
    assert {"python", "calc", "predict"} <= set(installed)
    assert installed["calc"].value == "latent_env.tools.calc:CalcTool"


def test_third_party_plugin_is_installed_and_picked_up():
    """tests/plugins/example_tool_plugin is a separate distribution installed by `make`."""
    tools = load_tools(["wordcount"])
    assert tools["wordcount"].run("three little words").output == "3"
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "show", "latent-env-example-tool-plugin"],
        capture_output=True, text=True,
    )
    assert listed.returncode == 0


def test_unknown_tool_name_is_a_clear_error():
    with pytest.raises(ToolRegistryError, match="no tool named 'nope' is installed"):
        load_tools(["nope"])


def test_a_tool_bug_becomes_an_error_output():
    class Broken(Tool):
        tag = "broken"

        def run(self, text: str) -> ToolOutput:
            raise RuntimeError("boom")

    out = Broken().run_batch(["x"])[0]
    assert out.status == "error" and out.error == "RuntimeError: boom"


def test_an_isolated_tool_runs_elsewhere_and_cannot_stall_or_crash_the_caller():
    import os
    import time

    from tests.tool_fakes import Sleepy

    tool = Sleepy()
    try:
        first = tool.safe_run("0")
        assert first.status == "ok" and int(first.output) != os.getpid()
        assert tool.safe_run("0").output == first.output  # one persistent worker
        started = time.perf_counter()
        slow = tool.safe_run("30")
        assert slow.status == "timeout" and time.perf_counter() - started < 10
        crashed, failed = tool.safe_run("exit"), tool.safe_run("raise")
        assert crashed.status == "crashed" and "worker died" in crashed.error
        assert failed.status == "error" and failed.error == "RuntimeError: plugin bug"
        after = tool.run_batch(["0", "0"])
        assert [o.status for o in after] == ["ok", "ok"] and after[0].output != first.output
    finally:
        tool.close()


def install_fake_distribution(
    root, dist: str, entry_points: dict[str, str], group: str = "latent_env.tools"
) -> None:
    """A ``NAME-1.0.dist-info`` folder that importlib.metadata finds on ``sys.path``."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")


def test_one_tool_name_from_two_distributions_is_an_error_naming_both(tmp_path, monkeypatch):
    # The README's plugin example once shared its name with the example plugin: one of them
    # silently never ran.
    install_fake_distribution(tmp_path / "a", "my-tools", {"counter": "my_tools:Count"})
    install_fake_distribution(tmp_path / "b", "your-tools", {"counter": "your_tools:Count"})
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    with pytest.raises(ToolRegistryError, match=r"tool name 'counter' is registered by two "
                       r"distributions, '(my|your)-tools' \((my|your)_tools:Count\) and "
                       r"'(my|your)-tools'"):
        available_tools()
    # One distribution seen twice (an editable and a regular install) is not a clash.
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    install_fake_distribution(tmp_path / "c", "my-tools", {"counter": "my_tools:Count"})
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p != str(tmp_path / "b")])
    monkeypatch.syspath_prepend(str(tmp_path / "c"))
    assert available_tools()["counter"].value == "my_tools:Count"


def test_one_tag_from_two_tools_names_both_distributions(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, "calc-twin", {"calc2": "latent_env.tools.calc:CalcTool"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ToolRegistryError, match=r"tools 'calc2' \(from 'calc-twin'\) and 'calc' "
                       r"\(from 'latent-env'\) both use <calc>"):
        load_tools(["calc", "calc2"])


def test_one_tool_default_everywhere():
    # The example plugin is installed here, yet nothing offers <wordcount> unless it is named.
    import gymnasium as gym

    from latent_env import ENV_ID
    from latent_env.bench.cli import DEFAULT_TOOLS as BENCH_TOOLS
    from latent_env.tools.registry import DEFAULT_TOOLS
    from latent_env.training.config import PipelineArguments

    assert "wordcount" in available_tools()
    assert list(load_tools()) == list(DEFAULT_TOOLS) == ["python", "calc", "predict"]
    env = gym.make(ENV_ID, model="tiny-random")
    prompt, _ = env.reset(seed=0)
    assert list(env.unwrapped.tools) == list(DEFAULT_TOOLS)
    assert "<python>" in prompt and "<wordcount>" not in prompt
    assert BENCH_TOOLS == PipelineArguments().tools == ",".join(DEFAULT_TOOLS)
    assert list(load_tools([*DEFAULT_TOOLS, "wordcount"]))[-1] == "wordcount"
