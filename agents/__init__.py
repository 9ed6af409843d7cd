"""Policies for latent-env: the baseline, random, oracle, HF models, OpenAI-compatible servers,
and tree-of-thought search, plus any registered under the ``latent_env.policies`` entry-point
group or named as ``MODULE:CLASS`` / ``FILE.py:CLASS``. Build one from a SPEC string with
:func:`make_policy`::

    from latent_env.agents import make_policy

    policy = make_policy("hf:default?temperature=0.7")
    actions = policy.act_batch(observations)
"""

from latent_env.agents.base import Policy, PolicyError, PolicySpecError, Sample, SamplingPolicy
from latent_env.agents.registry import (
    POLICY_FAMILIES,
    available_policies,
    make_policy,
    split_options,
)

__all__ = [
    "POLICY_FAMILIES", "Policy", "PolicyError", "PolicySpecError", "Sample", "SamplingPolicy",
    "available_policies", "make_policy", "split_options",
]
