"""Policy discovery: the ``latent_env.policies`` entry-point group, ``MODULE:CLASS`` and
``FILE.py:CLASS`` SPECs, and the one-line errors for each way they can be wrong."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from latent_env.agents import PolicySpecError, available_policies, make_policy
from latent_env.agents.registry import BUILTIN_POLICIES, ENTRY_POINT_GROUP
from latent_env.agents.simple import NonePolicy, RandomPolicy

from tests.policy_fakes import Echo
from tests.test_tools import install_fake_distribution

ROOT = Path(__file__).resolve().parents[1]
FAKES = "tests.policy_fakes"


def install_policies(root: Path, dist: str, entry_points: dict[str, str]) -> None:
    install_fake_distribution(root, dist, entry_points, group=ENTRY_POINT_GROUP)


def test_builtin_policies_register_through_the_entry_point_group():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert declared == BUILTIN_POLICIES
    found = available_policies()
    for name, value in declared.items():
        assert found[name].value == value and found[name].distribution == "latent-env"
        module, _, cls = value.partition(":")
        assert found[name].load() is getattr(importlib.import_module(module), cls)


def test_builtins_resolve_whatever_the_installed_metadata_says(tmp_path, monkeypatch):
    # An editable install made before the group existed lists no policies at all ...
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: [] if kw.get("group") == ENTRY_POINT_GROUP else real(**kw))
    assert isinstance(make_policy("random?seed=3"), RandomPolicy)
    monkeypatch.undo()
    # ... a fresh one lists them under the project's own name: no clash with the built-ins.
    install_policies(tmp_path, "latent-env", {"none": "latent_env.agents.simple:NonePolicy"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(make_policy("none"), NonePolicy)


def test_an_installed_policy_is_built_by_its_name_with_typed_options(tmp_path, monkeypatch):
    install_policies(tmp_path, "echo-policies", {"echo": f"{FAKES}:Echo"})
    monkeypatch.syspath_prepend(str(tmp_path))
    policy = make_policy("echo?word=hi&repeat=2&loud=true")
    assert isinstance(policy, Echo) and policy.name == "echo?word=hi&repeat=2&loud=true"
    assert policy.act_batch(["a", "b"]) == ["<reason>HI HI</reason>"] * 2
    assert available_policies()["echo"].distribution == "echo-policies"
    with pytest.raises(PolicySpecError, match=r"SPEC is one of: none, .*tree:BASE_SPEC, echo, "
                       r"MODULE:CLASS, FILE\.py:CLASS$"):
        make_policy("nonsense")


def test_one_policy_name_from_two_distributions_is_an_error_naming_both(tmp_path, monkeypatch):
    install_policies(tmp_path / "a", "my-policies", {"echo": f"{FAKES}:Echo"})
    install_policies(tmp_path / "b", "your-policies", {"echo": f"{FAKES}:WithTools"})
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    with pytest.raises(PolicySpecError, match=r"policy name 'echo' is registered by two "
                       r"distributions, '(my|your)-policies' \(tests\.policy_fakes:\w+\) and "
                       r"'(my|your)-policies'"):
        make_policy("none")


def test_a_plugin_cannot_take_a_builtin_name(tmp_path, monkeypatch):
    install_policies(tmp_path, "rogue-policies", {"random": f"{FAKES}:Echo"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PolicySpecError, match=re.escape(
            "policy name 'random' is registered by two distributions, 'latent-env' "
            "(latent_env.agents.simple:RandomPolicy) and 'rogue-policies' (tests.policy_fakes:Echo)")):
        available_policies()


def test_module_class_spec_builds_the_class_with_its_options_and_the_tools():
    policy = make_policy(f"{FAKES}:Echo?repeat=3", tools={"calc": object()})
    assert isinstance(policy, Echo) and policy.name == f"{FAKES}:Echo?repeat=3"
    assert policy.act_batch(["o"]) == ["<reason>x x x</reason>"]
    tools = {"calc": object()}
    assert make_policy(f"{FAKES}:WithTools", tools=tools).tools is tools
    assert make_policy(f"{FAKES}:Echo", word="overridden").word == "overridden"


def test_file_class_spec_loads_the_file_once_under_a_private_name(tmp_path):
    path = tmp_path / "random.py"  # the stdlib's name: loading it must not replace the stdlib's
    path.write_text(
        "import random as stdlib_random\n\n"
        "LOADS = []\nLOADS.append(1)\n\n"
        "class Mine:\n"
        "    def __init__(self, scale: float = 1.0):\n"
        "        self.scale = scale\n"
        "    def act_batch(self, observations, tasks=None):\n"
        "        return [f'<calc>{self.scale}</calc>' for _ in observations]\n"
        "    def reset(self, seed=None):\n"
        "        pass\n"
    )
    first = make_policy(f"{path}:Mine?scale=2.5")
    assert first.act_batch(["o"]) == ["<calc>2.5</calc>"] and first.name == f"{path}:Mine?scale=2.5"
    second = make_policy(f"{path}:Mine")
    assert type(second) is type(first) and len(__import__(type(first).__module__).LOADS) == 1
    import random

    assert callable(random.randint)


def test_a_tree_over_a_class_that_cannot_sample_is_refused():
    with pytest.raises(PolicySpecError, match="cannot sample"):
        make_policy(f"tree:{FAKES}:Echo", tools={})


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module_xyz:Thing", "no_such_module_xyz:Thing: no module named "
         "'no_such_module_xyz' (installed, on PYTHONPATH or in the current directory; a file is "
         "FILE.py:CLASS)"),
        ("missing/policy.py:Thing", "missing/policy.py:Thing: no such file missing/policy.py"),
        (f"{FAKES}:Ech", f"{FAKES}:Ech: {FAKES} has no class 'Ech' (policy classes there: "
         "BrokenInit, Echo, NeedsLevel, WithTools)"),
        (f"{FAKES}:NotAPolicy", f"{FAKES}:NotAPolicy: NotAPolicy is not a policy: it has no "
         "reset() (a policy class has act_batch(observations, tasks=None) -> list[str] and "
         "reset(seed=None); see agents/base.py)"),
        (f"{FAKES}:not_a_class", f"{FAKES}:not_a_class: not_a_class is a function, not a class"),
        (f"{FAKES}:Echo?colour=red", f"{FAKES}:Echo: unknown option 'colour' (options: word, "
         "repeat, loud)"),
        (f"{FAKES}:Echo?repeat=many", f"{FAKES}:Echo: option repeat='many' is not a valid int"),
        (f"{FAKES}:Echo?loud=maybe", f"{FAKES}:Echo: option loud='maybe' is not a valid bool"),
        (f"{FAKES}:NeedsLevel", f"{FAKES}:NeedsLevel: needs the option(s) level "
         f"({FAKES}:NeedsLevel?level=…)"),
        (f"{FAKES}:BrokenInit", f"{FAKES}:BrokenInit: building BrokenInit failed: RuntimeError: "
         "no GPU here"),
        (f"{FAKES}:Echo:extra", "unknown policy"),
    ],
)
def test_bad_class_specs_are_one_line_errors(spec, message):
    with pytest.raises(PolicySpecError) as caught:
        make_policy(spec)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_policy_file_that_fails_to_import_names_its_file_and_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("class Mine:\n    def act_batch(self\n")
    with pytest.raises(PolicySpecError, match=re.escape(
            f"{broken}:Mine: importing {broken} failed: {broken}:2: SyntaxError")):
        make_policy(f"{broken}:Mine")
    raising = tmp_path / "raising.py"
    raising.write_text("x = 1\nimport no_such_dependency_xyz\n")
    with pytest.raises(PolicySpecError, match=re.escape(
            f"{raising}:Mine: importing {raising} failed: {raising}:2: ModuleNotFoundError: "
            "No module named 'no_such_dependency_xyz'")):
        make_policy(f"{raising}:Mine")
