"""latent-env: a Gymnasium environment for LLMs that write their own latent data.

``import latent_env`` registers ``latent_env/LatentEnv-v0``::

    import gymnasium as gym
    import latent_env

    env = gym.make("latent_env/LatentEnv-v0", tasks="synthetic-small")
    vec = gym.make_vec("latent_env/LatentEnv-v0", num_envs=8,
                       vectorization_mode="vector_entry_point")
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"
ENV_ID = "latent_env/LatentEnv-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="latent_env.env:LatentEnv",
        vector_entry_point="latent_env.vector:LatentVectorEnv",
    )

__all__ = ["ENV_ID", "__version__"]
