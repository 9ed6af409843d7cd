"""STaR / Toolformer bootstrapping: the model's own latents, kept when they raise the likelihood.

For each task, ``k`` latents are sampled from the current policy and run through the environment
exactly like an episode (tools in the sandbox, the frozen reward model scores the continuation).
A latent is kept when its gain is at least ``min_gain`` nats (Toolformer keeps an API call when it
lowers the loss by at least τ_f = 1.0); duplicates of a kept latent for the same task are dropped.
"""

from __future__ import annotations

from typing import Any

from latent_env.training.reward import EnvReward


def sample_and_filter(env: Any, model_path: str, tasks: list[Any], k: int, min_gain: float,
                      seed: int, temperature: float = 0.8,
                      max_new_tokens: int = 176) -> tuple[list[Any], list[str], dict[str, Any]]:
    """Returns (tasks, latents) to train on and counts of what was sampled and kept."""
    from latent_env.agents.hf import HFPolicy

    policy = HFPolicy(model=model_path, temperature=temperature, max_new_tokens=max_new_tokens,
                      seed=seed)
    observations = [env.new_episode(t).prompt for t in tasks]
    samples = policy.sample(observations, k, temperature, with_logprobs=False)
    pairs = [(t, c.text) for t, candidates in zip(tasks, samples) for c in candidates]
    # Scored exactly as RL rewards are: tools in the sandbox, then the frozen reward model.
    reward = EnvReward(env, term="loglik_gain")
    gains = reward([""] * len(pairs), [a for _, a in pairs],
                   task=[t.to_dict() for t, _ in pairs])
    kept_tasks: list[Any] = []
    kept_latents: list[str] = []
    seen: set[tuple[str, str]] = set()
    for (task, action), gain in zip(pairs, gains):
        key = (task.id, action.strip())
        if gain >= min_gain and key not in seen:
            seen.add(key)
            kept_tasks.append(task)
            kept_latents.append(action.strip())
    return kept_tasks, kept_latents, {
        "sampled": len(pairs),
        "kept": len(kept_latents),
        "tasks_with_a_kept_latent": len({t.id for t in kept_tasks}),
        "mean_sampled_gain": sum(gains) / len(gains) if gains else 0.0,
    }
