from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from latent_env.actions import parse_action

TAGS = {"python", "calc"}


def kinds(action: str) -> list[tuple[str, str, str]]:
    return [(s.kind, s.tag, s.text) for s in parse_action(action, TAGS).segments]


def test_blocks_reasoning_thinking_and_text():
    action = "hi <python>print(1)</python> <reason>because</reason><thinking><thinking><done/> x"
    parsed = parse_action(action, TAGS)
    assert kinds(action)[:4] == [
        ("text", "", "hi "), ("tool", "python", "print(1)"), ("text", "", " "),
        ("reason", "reason", "because"),
    ]
    assert parsed.n_thinking == 2 and parsed.done and parsed.well_formed
    assert [s.kind for s in parsed.segments][-2:] == ["thinking", "text"]  # kept as trace


def test_blocks_do_not_nest():
    parsed = parse_action("<python>a = '<calc>1</calc>'</python>", TAGS)
    assert [(s.kind, s.text) for s in parsed.segments] == [("tool", "a = '<calc>1</calc>'")]


def test_unclosed_and_unknown_blocks_are_errors_not_exceptions():
    parsed = parse_action("<foo>x</foo><python>print(1)", TAGS)
    assert [(s.kind, s.problem) for s in parsed.segments] == [
        ("error", "unknown_tool"), ("error", "unclosed"),
    ]
    assert parsed.errors == ["unknown tool <foo>", "unclosed <python> block"]
    assert not parsed.well_formed


def test_policy_written_output_is_ignored():
    parsed = parse_action("<output>16</output>", TAGS)
    assert [s.kind for s in parsed.segments] == ["text"]
    assert "written by the environment" in parsed.errors[0]


def test_lone_angle_brackets_are_text():
    assert kinds("a < b and <b>bold") == [("text", "", "a < b and "), ("text", "", "<b>"),
                                           ("text", "", "bold")]


def test_segment_offsets_cover_the_action():
    action = "x<calc>1+1</calc>y<reason>r</reason>"
    segs = parse_action(action, TAGS).segments
    assert "".join(action[s.start : s.end] for s in segs) == action


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/pythoncalreasdi _\n1")) | st.characters(),
               max_size=300))
def test_parser_never_raises_and_offsets_are_ordered(action):
    parsed = parse_action(action, TAGS)
    ends = [(s.start, s.end) for s in parsed.segments]
    assert all(a <= b for a, b in ends)
    assert all(ends[i][1] <= ends[i + 1][0] for i in range(len(ends) - 1))


def test_thinking_tokens_inside_a_block_are_latent_not_code():
    parsed = parse_action("<python>x = 1<thinking>\nprint(x)</python>", TAGS)
    assert parsed.n_thinking == 1
    assert parsed.tool_segments[0].text == "x = 1\nprint(x)"
