"""Configuration of ``train_rl.py``: one dataclass per concern, parsed with TRL's ``TrlParser``.

The RL algorithm's own TRL config (``GRPOConfig``, ``RLOOConfig`` or ``PPOConfig``) is parsed
alongside, so every TRL option (``--learning_rate``, ``--num_generations``, ``--use_vllm``, …)
passes straight through. Presets are YAML files in ``latent_env/training/presets/`` that set
defaults; command-line flags override them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from latent_env.devices import DTYPES as REWARD_DTYPES
from latent_env.tools.registry import DEFAULT_TOOLS

PRESET_DIR = Path(__file__).parent / "presets"
STAGES = ("sft", "latent", "fusion", "rl")
ALGOS = ("grpo", "rloo", "ppo")
TRACE_STYLES = ("echo", "program")  # see latent_env.training.data.gold_sft_records
TRACE_KINDS = ("code", "reasoning", "empty")  # latent_env.training.data.trace_kind
PREDICTORS = ("frozen", "self")
PREDICTOR_BASELINES = ("ema", "initial", "self")  # latent_env.predictor.BASELINES


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


@dataclass
class PipelineArguments:
    """What to train, on what, and where the run lives."""

    print_config: bool = field(default=False, metadata={
        "help": "print the resolved configuration (preset, then flags) as JSON and exit"})
    preset: str = field(default="default", metadata={
        "help": "preset file in latent_env/training/presets (default, smoke, gpu-small, gpu-7b); "
                "flags given on the command line override it"})
    model: str = field(default="default", metadata={
        "help": "policy model to start from: default (SmolLM2-135M-Instruct), tiny-random, a "
                "local path or a HF id"})
    reward_model: str = field(default="", metadata={
        "help": "model that scores continuations (the reward); empty = the same spec as --model, "
                "loaded as a separate frozen copy"})
    reward_dtype: str = field(default="float32", metadata={
        "help": "precision of the frozen reward model: float32 (the precision rewards are "
                "measured in), or bfloat16/float16 on a GPU, with the log-softmax still fp32 "
                "(bf16's drift is in benchmarks/RESULTS.md)"})
    reward_batch_tokens: int = field(default=0, metadata={
        "help": "padded tokens per reward forward pass; 0 = sized for the device (4096 on the "
                "CPU, 32768 on a GPU)"})
    stages: str = field(default="sft,latent,fusion,rl", metadata={
        "help": f"comma-separated stages to run, in order, from {', '.join(STAGES)}"})
    algo: str = field(default="grpo", metadata={"help": "RL algorithm: grpo, rloo or ppo"})
    tasks: str = field(default="synthetic", metadata={
        "help": "task suite name, directory of train/validation/test .jsonl files, or one "
                ".jsonl file, split by each task's \"split\" field, or without one by a hash of "
                "its context (60/20/20)"})
    tools: str = field(default=",".join(DEFAULT_TOOLS), metadata={
        "help": "tools the policy may call (entry-point names)"})
    reward: str = field(default="loglik_gain=1", metadata={
        "help": "reward rubric as term=weight pairs (see latent_env.rewards.rubric.TERMS); "
                "unmentioned terms are logged with weight 0"})
    run_dir: str = field(default="", metadata={
        "help": "run directory: resolved config, logs, per-stage checkpoints, metrics, report "
                "(default: runs/<date-time>; with --resume, the newest run in runs/)"})
    resume: bool = field(default=False, metadata={
        "help": "continue the run in --run_dir: finished stages are skipped, an interrupted "
                "stage restarts from its last checkpoint"})
    keep_checkpoints: bool = field(default=False, metadata={
        "help": "keep a finished stage's Trainer checkpoints (model and optimiser state: 1.6 GB "
                "a stage for the default model); by default they are deleted once the stage's "
                "final model is saved and marked finished, since --resume skips finished stages"})
    save_every_minutes: float = field(default=5.0, metadata={
        "help": "also write a Trainer checkpoint once this many minutes of training have passed "
                "since the last one, whatever --save_steps says, so a killed stage resumes having "
                "lost at most that much (0: step-based checkpoints only)"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: LATENT_ENV_THREADS, "
                                                       "else OMP_NUM_THREADS, else this rank's "
                                                       "share of the cores, at most 8)"})
    train_per_family: int = field(default=40, metadata={
        "help": "training tasks drawn per family from the suite's train split, for SFT and as "
                "many again for RL"})
    train_per_kind: str = field(default="", metadata={
        "help": "per-kind overrides of --train_per_family, by the kind of latent a family's "
                "traces teach: e.g. 'code=64,empty=40' (kinds: code, reasoning, empty)"})
    text: str = field(default="", metadata={
        "help": "raw text to train on as well: a .txt file or a directory of .txt/.md files. Its "
                "passages are split into train/validation/test by a hash of their text; tasks are "
                "cut in train passages before numbers, at high-loss positions and at random word "
                "boundaries (latent_env/tasks/corpus.py), and evaluation adds test passages"})
    text_per_mode: int = field(default=24, metadata={
        "help": "with --text: tasks per split-point mode (numbers, loss, random) for SFT, and as "
                "many again for RL; no-help positions are taught the empty latent"})

    def per_kind(self) -> dict[str, int]:
        """``--train_per_kind`` as ``{kind: tasks per family}``."""
        counts: dict[str, int] = {}
        for item in filter(None, (p.strip() for p in self.train_per_kind.split(","))):
            kind, _, value = item.partition("=")
            if kind.strip() not in TRACE_KINDS or not value.strip().isdigit() or int(value) < 1:
                raise ValueError(f"--train_per_kind: {item!r} is not KIND=N with KIND one of "
                                 f"{', '.join(TRACE_KINDS)} and N >= 1 (e.g. 'code=64,empty=40')")
            counts[kind.strip()] = int(value)
        return counts

    def __post_init__(self) -> None:
        stages = self.stage_list
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ValueError(f"--stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")
        if stages != [s for s in STAGES if s in stages]:
            raise ValueError(f"--stages must keep the order {','.join(STAGES)}, got {self.stages}")
        if self.algo not in ALGOS:
            raise ValueError(f"--algo must be one of {', '.join(ALGOS)}, got {self.algo!r}")
        if self.train_per_family < 1:
            raise ValueError("--train_per_family must be at least 1")
        self.per_kind()  # rejects a malformed --train_per_kind now, not when SFT starts
        if not self.save_every_minutes >= 0:  # NaN too
            raise ValueError(f"--save_every_minutes must be >= 0, got {self.save_every_minutes}")
        if self.reward_dtype not in REWARD_DTYPES:
            raise ValueError(f"--reward_dtype must be one of {', '.join(REWARD_DTYPES)}, got "
                             f"{self.reward_dtype!r}")
        if self.reward_batch_tokens < 0:
            raise ValueError(f"--reward_batch_tokens must be >= 0 (0 sizes it for the device), "
                             f"got {self.reward_batch_tokens}")
        if self.text_per_mode < 1:
            raise ValueError("--text_per_mode must be at least 1")
        if self.text and not Path(self.text).exists():
            raise ValueError(f"--text {self.text}: no such file or directory")

    @property
    def stage_list(self) -> list[str]:
        return [s.strip() for s in self.stages.split(",") if s.strip()]


@dataclass
class SFTArguments:
    """Stage 1: explicit traces (gold programs, plus self-generated latents filtered by gain)."""

    sft_trace_style: str = field(default="echo", metadata={
        "help": "how gold programs become traces: echo (the final print repeats the text's last "
                "words before the answer, which the reward model copies far better) or program "
                "(the task's program unchanged)"})
    sft_epochs: float = field(default=1.0, metadata={"help": "epochs over the trace dataset"})
    sft_learning_rate: float = field(default=1e-4, metadata={"help": "SFT learning rate"})
    sft_batch_size: int = field(default=8, metadata={"help": "traces per optimiser step"})
    sft_max_steps: int = field(default=-1, metadata={"help": "stop after this many steps "
                                                               "(-1: run the epochs)"})
    sft_micro_batch_size: int = field(default=0, metadata={
        "help": "traces per forward pass (0: the whole step). Each step's traces are drawn at "
                "random, sorted by length into micro-batches and accumulated, the loss averaged "
                "over the step's tokens: the objective of one random batch, with less padding "
                "(random batches of 8 pad the default mix to 1.43x its tokens, micro-batches "
                "of 2 to 1.05x)"})
    sft_predictor_loss_weight: float = field(default=0.0, metadata={
        "help": "W of a predictor loss added to every SFT step: W × NLL(Y | c(X, L)) on the "
                "stage's gold (or bootstrapped) latents after their tools ran, loss on Y only, so "
                "the model learns to read its latents as well as write them (an empty latent "
                "teaches Y | X); 0 turns it off"})
    sft_predictor_plain_weight: float = field(default=0.0, metadata={
        "help": "V of a plain-text term added to every SFT step: V × NLL(Y | X) on the same "
                "tasks, so that SFT on chat traces does not cost prediction without a latent "
                "(latent_env/training/predictor_loss.py); 0 turns it off"})
    bootstrap_k: int = field(default=0, metadata={
        "help": "STaR/Toolformer bootstrapping: latents sampled per task from the model after "
                "gold-trace SFT (0 turns it off)"})
    bootstrap_tasks: int = field(default=32, metadata={"help": "tasks to bootstrap on"})
    bootstrap_min_gain: float = field(default=1.0, metadata={
        "help": "keep a sampled latent when its likelihood gain is at least this (nats); "
                "Toolformer's filter threshold is 1.0"})

    def __post_init__(self) -> None:
        if self.sft_epochs <= 0 and self.sft_max_steps <= 0:
            raise ValueError("SFT needs --sft_epochs > 0 or --sft_max_steps > 0")
        if self.bootstrap_k < 0:
            raise ValueError("--bootstrap_k must be >= 0")
        for name in ("sft_predictor_loss_weight", "sft_predictor_plain_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.sft_micro_batch_size < 0 or (
                self.sft_micro_batch_size and self.sft_batch_size % self.sft_micro_batch_size):
            raise ValueError(f"--sft_micro_batch_size must divide --sft_batch_size "
                             f"({self.sft_batch_size}), or be 0 for one pass a step; got "
                             f"{self.sft_micro_batch_size}")
        if self.sft_trace_style not in TRACE_STYLES:
            raise ValueError(f"--sft_trace_style must be echo or program, got "
                             f"{self.sft_trace_style!r}")


@dataclass
class LatentArguments:
    """Stages 2-3 (LT-Tuning): dynamic <thinking> tokens, then context-prediction fusion."""

    latent_steps: int = field(default=40, metadata={"help": "optimiser steps per latent stage"})
    latent_learning_rate: float = field(default=5e-5, metadata={"help": "latent stage LR"})
    latent_threshold: float = field(default=0.3, metadata={
        "help": "insert <thinking> where p(gold next token) is below this (stage 2)"})
    fusion_threshold: float = field(default=0.2, metadata={"help": "the same for stage 3"})
    latent_alpha: float = field(default=0.5, metadata={"help": "α of stage 2 (mode hidden "
                                                                "ignores it)"})
    fusion_alpha: float = field(default=0.6, metadata={
        "help": "α of stage 3: e = α·h + (1-α)·Σ P̂(w)E(w)"})
    latent_max_insertions: int = field(default=10, metadata={
        "help": "at most this many <thinking> tokens per trace"})

    def __post_init__(self) -> None:
        for name in ("latent_alpha", "fusion_alpha", "latent_threshold", "fusion_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"--{name} must be in [0, 1], got {value}")


@dataclass
class RLArguments:
    """The RL stage's options beyond its TRL trainer config."""

    rl_sft_anchor: float = field(default=0.0, metadata={
        "help": "weight of a supervised loss on gold traces (the SFT stage's objective) added to "
                "every GRPO/RLOO step, as InstructGPT's PPO-ptx does, so RL on a few prompts does "
                "not undo SFT on others; 0 turns it off"})
    rl_anchor_batch_size: int = field(default=8, metadata={
        "help": "gold traces in the anchor's batch at each RL step"})
    rl_turns: int = field(default=1, metadata={
        "help": "actions per RL episode. 1: single-turn, the completion is one action whose tool "
                "blocks run once it ends. N > 1: multi-turn, each tool block runs as soon as the "
                "policy closes it, its output is shown (and masked from the loss), and the policy "
                "goes on until <done/>, end of sequence, N actions or max_completion_length "
                "(latent_env/training/rollout.py; GRPO only)"})
    predictor: str = field(default="frozen", metadata={
        "help": "who scores the continuation in the RL reward. frozen: a separate copy of "
                "--reward_model that never trains. self: the policy's own live weights, "
                "log p_θ(Y | c(X, L)) minus --predictor_baseline (latent_env/predictor.py; GRPO "
                "and RLOO)"})
    predictor_baseline: str = field(default="ema", metadata={
        "help": "with --predictor self, what the reward subtracts. ema: log p_φ(Y | X), φ an EMA "
                "of θ updated every optimiser step (RLP). initial: log p_θ0(Y | X), the starting "
                "weights. self: log p_θ(Y | X) now. It is one number per prompt, so GRPO's and "
                "RLOO's group advantages do not depend on it (it shows in the logged reward)"})
    predictor_ema_decay: float = field(default=0.9, metadata={
        "help": "d of the ema baseline, φ ← d·φ + (1-d)·θ per optimiser step (0.9: a half-life "
                "of ~6.6 steps, for the default 10-step stage)"})
    predictor_loss_weight: float = field(default=0.0, metadata={
        "help": "W of the predictor loss added to every GRPO/RLOO step: W × NLL(Y | c(X, L)) "
                "through θ on the step's sampled episodes, loss on Y only "
                "(latent_env/training/predictor_loss.py); 0 turns it off"})
    predictor_plain_weight: float = field(default=0.0, metadata={
        "help": "weight of NLL(Y | X) on the same episodes' tasks, so prediction without a "
                "latent does not decay; 0 turns it off"})
    rl_screen_per_family: int = field(default=0, metadata={
        "help": "screen this many RL prompts per family with the starting policy's greedy "
                "latent and train only on those it answers wrong (latent_env/training/screen.py); "
                "0 trains on every RL prompt unscreened"})

    def __post_init__(self) -> None:
        if self.rl_sft_anchor < 0:
            raise ValueError(f"--rl_sft_anchor must be >= 0, got {self.rl_sft_anchor}")
        if self.rl_anchor_batch_size < 1:
            raise ValueError("--rl_anchor_batch_size must be at least 1")
        if self.rl_turns < 1:
            raise ValueError(f"--rl_turns must be at least 1 (1: single-turn), got {self.rl_turns}")
        self._check_predictor()
        if self.rl_screen_per_family < 0:
            raise ValueError(f"--rl_screen_per_family must be >= 0, got {self.rl_screen_per_family}")

    def _check_predictor(self) -> None:
        if self.predictor not in PREDICTORS:
            raise ValueError(f"--predictor must be frozen or self, got {self.predictor!r}")
        if self.predictor_baseline not in PREDICTOR_BASELINES:
            raise ValueError(f"--predictor_baseline must be one of "
                             f"{', '.join(PREDICTOR_BASELINES)}, got {self.predictor_baseline!r}")
        if self.predictor == "frozen" and self.predictor_baseline != "ema":
            raise ValueError(f"--predictor_baseline {self.predictor_baseline} needs --predictor "
                             "self (the frozen scorer's baseline is its own log p(Y | X))")
        if not 0.0 <= self.predictor_ema_decay < 1.0:
            raise ValueError(f"--predictor_ema_decay must be in [0, 1), got "
                             f"{self.predictor_ema_decay}")
        for name in ("predictor_loss_weight", "predictor_plain_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")

    @property
    def predictor_loss(self) -> bool:
        return self.predictor_loss_weight > 0 or self.predictor_plain_weight > 0


@dataclass
class EvalArguments:
    """The before/after table on the held-out test split."""

    eval_per_family: int = field(default=5, metadata={
        "help": "test tasks per family in the before/after table (0 skips evaluation)"})
    eval_max_new_tokens: int = field(default=128, metadata={"help": "latent tokens to generate"})
    eval_batch_size: int = field(default=16, metadata={"help": "policy batch size"})
    eval_dtype: str = field(default="float32", metadata={
        "help": "precision of the evaluated policies and of the founding question's scorers: "
                "float32, or bfloat16/float16 on a GPU (log-softmax stays fp32)"})

    def __post_init__(self) -> None:
        if self.eval_dtype not in REWARD_DTYPES:
            raise ValueError(f"--eval_dtype must be one of {', '.join(REWARD_DTYPES)}, got "
                             f"{self.eval_dtype!r}")


@dataclass
class LoraArguments:
    """LoRA adapters (peft) for the sft and rl stages instead of training every weight."""

    lora_r: int = field(default=0, metadata={
        "help": "LoRA rank for the sft and rl stages (0 trains every weight). A stage saves "
                "RUN/<stage>/final (the adapter merged into its base: a plain checkpoint every "
                "later stage and hf: can load) and RUN/<stage>/final/adapter (the adapter "
                "alone; hf:PATH loads it onto the base it records)"})
    lora_alpha: float = field(default=0.0, metadata={
        "help": "LoRA scaling numerator α (the update is scaled by α/r); 0: twice --lora_r"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    lora_target_modules: str = field(default="all-linear", metadata={
        "help": "comma-separated module names to adapt (e.g. q_proj,v_proj), or all-linear "
                "(every linear layer but the output head)"})

    def __post_init__(self) -> None:
        if self.lora_r < 0:
            raise ValueError(f"--lora_r must be >= 0 (0 turns LoRA off), got {self.lora_r}")
        if self.lora_alpha < 0:
            raise ValueError(f"--lora_alpha must be >= 0 (0: twice --lora_r), got "
                             f"{self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules:
            raise ValueError("--lora_target_modules is empty; name modules or use all-linear")

    @property
    def target_modules(self) -> str | list[str]:
        names = [n.strip() for n in self.lora_target_modules.split(",") if n.strip()]
        return "all-linear" if names == ["all-linear"] else names
