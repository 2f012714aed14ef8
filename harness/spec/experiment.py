"""What an experiment file declares: frozen, validated settings a run is built from."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.spec._check import SpecError, _check_types, _require
from harness.spec.gate import GateSpec
from harness.spec.rules import Rule, as_rules, rule_name
from harness.spec.watches import COMPOSITE, Watch, default_watches, watch_config
from rubrics import Rubric, get

EMBEDDED = "embedded"
# The shipped tiny GPT-NeoX-Japanese that `ModelSpec("embedded")` names.
EMBEDDED_DIR = Path(__file__).resolve().parents[1] / "assets" / "tiny-gpt-neox-japanese"
DTYPES = ("float32", "bfloat16", "float16")
PROFILES = ("full", "cpu")
# Bounds on the work one scenario asks of every round, checked before a run directory exists; the prompt's length
# against the model's context window is checked once the tokenizer is at hand (training/model.py).
MAX_TURNS = 200
MAX_TOPIC_CHARS = 1000


def _rubric(value: Rubric | str) -> Rubric:
    """Rubrics may be named: `rubrics=("relevance", "fluency")` works as well as the imported functions."""
    if not isinstance(value, str):
        return value
    try:
        return get(value)
    except KeyError as exc:
        raise SpecError(f"Experiment.rubrics: {exc.args[0]}") from None


@dataclass(frozen=True)
class ModelSpec:
    """The causal LM to fine-tune."""

    name_or_path: str
    """A hub id (`abeja/gpt-neox-japanese-2.7b`), a local directory, or `embedded` for the shipped tiny model."""
    dtype: str = "bfloat16"
    """Weights dtype on CUDA; CPU runs always use float32."""
    quantization: str | None = None
    """QLoRA: "4bit" (NF4, double quantization) or "8bit" base weights through bitsandbytes; needs CUDA."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(bool(self.name_or_path.strip()), "ModelSpec.name_or_path must not be empty")
        _require(self.dtype in DTYPES, f"ModelSpec.dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        _require(
            self.quantization in (None, "4bit", "8bit"),
            f'ModelSpec.quantization must be None, "4bit" or "8bit", got {self.quantization!r}',
        )


@dataclass(frozen=True)
class LoraSpec:
    """The LoRA adapter trained on top of the frozen model."""

    r: int = 8
    """Rank of the update matrices."""
    alpha: int = 16
    """Scaling numerator: the update is scaled by alpha / r."""
    dropout: float = 0.05
    """Dropout on the adapter input during training."""
    target_modules: tuple[str, ...] = ()
    """Module names to adapt (GPT-NeoX-Japanese: query_key_value, dense, dense_h_to_4h, dense_4h_to_h); empty:
    peft's default for the model's architecture (query_key_value for GPT-NeoX(-Japanese), q_proj/v_proj for Llama)."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(self.r > 0, f"LoraSpec.r must be a positive integer, got {self.r}")
        _require(self.alpha > 0, f"LoraSpec.alpha must be a positive integer, got {self.alpha}")
        _require(0.0 <= self.dropout < 1.0, f"LoraSpec.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class DataSpec:
    """The fine-tuning corpus: a JSON-lines file, one document per line."""

    path: str
    """Path to the .jsonl file; relative paths resolve from the working directory or the project root."""
    text_field: str = "text"
    """The key holding each document's text."""
    block_size: int = 128
    """Tokens per training block: documents are joined with end-of-text and cut into blocks."""
    max_chars: int = 20_000
    """Longest document accepted; a longer one is a bad line (a tweet corpus holding 1 MB strings is broken)."""
    on_bad_lines: str = "error"
    """`error` stops at the first bad line (not JSON, no text, too long); `skip` skips and counts them."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(self.path.endswith(".jsonl"), f"DataSpec.path must be a .jsonl file, got {self.path!r}")
        _require(self.block_size >= 8, f"DataSpec.block_size must be at least 8 tokens, got {self.block_size}")
        _require(self.max_chars > 0, f"DataSpec.max_chars must be positive, got {self.max_chars}")
        _require(
            self.on_bad_lines in ("error", "skip"),
            f"DataSpec.on_bad_lines must be 'error' or 'skip', got {self.on_bad_lines!r}",
        )


@dataclass(frozen=True)
class Scenario:
    """A prompted conversation the model holds at every evaluation: speakers take turns on a topic."""

    name: str
    """Short slug; the W&B key `rubric/<rubric>/<name>` and the report label."""
    topic: str
    """What the speakers argue about, e.g. 月刊Kaggleは役に立たない."""
    speakers: tuple[str, ...] = ("Kaggleアンチ", "Kaggleファン")
    """Who speaks, in turn order; the first speaker opens."""
    turns: int = 4
    """Total number of turns (speakers alternate)."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(
            re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.name) is not None,
            f"Scenario.name must be a lowercase slug like 'monthly-kaggle', got {self.name!r}",
        )
        _require(bool(self.topic.strip()), f"Scenario {self.name!r}: topic must not be empty")
        _require(
            len(self.topic) <= MAX_TOPIC_CHARS,
            f"Scenario {self.name!r}: topic must be at most {MAX_TOPIC_CHARS} characters, got {len(self.topic)}",
        )
        _require(
            len(self.speakers) >= 2 and len(set(self.speakers)) == len(self.speakers),
            f"Scenario {self.name!r}: speakers must name at least two different speakers, got {self.speakers}",
        )
        _require(
            all(s.strip() and "：" not in s and "\n" not in s for s in self.speakers),
            f"Scenario {self.name!r}: speaker names must be non-empty and contain no '：' or line break",
        )
        _require(self.turns >= 1, f"Scenario {self.name!r}: turns must be at least 1, got {self.turns}")
        _require(
            self.turns <= MAX_TURNS, f"Scenario {self.name!r}: turns must be at most {MAX_TURNS}, got {self.turns}"
        )


@dataclass(frozen=True)
class GenerationSpec:
    """How the model speaks during evaluation."""

    max_new_tokens: int = 48
    """Upper bound on tokens per turn; a turn also ends at a line break or end-of-text."""
    do_sample: bool = False
    """Greedy decoding by default; sampling is seeded per evaluation step."""
    temperature: float = 0.8
    """Sampling temperature (ignored when greedy)."""
    top_p: float = 0.95
    """Nucleus sampling mass (ignored when greedy)."""
    repetition_penalty: float = 1.0
    """>1 discourages repeating tokens; 1 leaves the model as it is."""
    seed: int = 0
    """Base seed for sampling; each evaluation step uses seed + step."""
    chat_template: bool = False
    """Build each turn's prompt with the tokenizer's chat template (chat models): README "Chat models"."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(self.max_new_tokens > 0, f"GenerationSpec.max_new_tokens must be positive, got {self.max_new_tokens}")
        _require(self.temperature > 0, f"GenerationSpec.temperature must be positive, got {self.temperature}")
        _require(0 < self.top_p <= 1, f"GenerationSpec.top_p must be in (0, 1], got {self.top_p}")
        _require(self.repetition_penalty > 0, "GenerationSpec.repetition_penalty must be positive")


@dataclass(frozen=True)
class TrainingSpec:
    """Arguments handed to the HF Trainer."""

    max_steps: int
    """Optimizer steps in the run."""
    learning_rate: float = 2e-4
    """Peak learning rate of the LoRA parameters."""
    batch_size: int = 8
    """Blocks per device per step."""
    gradient_accumulation_steps: int = 1
    """Micro-batches accumulated into one optimizer step."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    lr_scheduler: str = "linear"
    """A transformers scheduler name (linear, cosine, constant, ...)."""
    logging_steps: int = 10
    """Log the loss every this many steps."""
    save_steps: int = 0
    """Checkpoint (for --resume) every this many steps; 0 checkpoints at every evaluation step."""
    seed: int = 0
    """Seed for data order, LoRA init and dropout."""
    gradient_checkpointing: bool = False
    """Trade compute for memory on large models."""
    fsdp: bool = False
    """Under torchrun / accelerate launch, shard the base weights across the processes (FSDP2, applied by transformers
    at load); one process ignores it."""
    metric_for_best_model: str | None = None
    """What picks adapter-best/ (and, as in transformers, the best checkpoint): `eval_rubric/composite` (also what
    None means) or `eval_rubric/<rubric>`."""
    greater_is_better: bool | None = None
    """None: from the metric (the composite and higher-is-better rubrics up, contamination down)."""
    load_best_model_at_end: bool = False
    """transformers' option: the final adapter/ is the best checkpoint's (the step-0 round is no checkpoint)."""
    early_stopping_patience: int = 0
    """0 trains to max_steps; N adds transformers' EarlyStoppingCallback: stop after N rounds without a better
    metric_for_best_model."""
    early_stopping_threshold: float = 0.0
    """How much better a round must be to count as better, for early stopping."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(self.max_steps > 0, f"TrainingSpec.max_steps must be positive, got {self.max_steps}")
        _require(self.learning_rate > 0, f"TrainingSpec.learning_rate must be positive, got {self.learning_rate}")
        _require(self.batch_size > 0, f"TrainingSpec.batch_size must be positive, got {self.batch_size}")
        _require(self.gradient_accumulation_steps > 0, "TrainingSpec.gradient_accumulation_steps must be positive")
        _require(self.warmup_steps >= 0, f"TrainingSpec.warmup_steps must be >= 0, got {self.warmup_steps}")
        _require(self.logging_steps > 0, f"TrainingSpec.logging_steps must be positive, got {self.logging_steps}")
        _require(self.save_steps >= 0, f"TrainingSpec.save_steps must be >= 0, got {self.save_steps}")
        _require(
            self.metric_for_best_model is None or self.metric_for_best_model.startswith("eval_rubric/"),
            "TrainingSpec.metric_for_best_model must be eval_rubric/composite or eval_rubric/<rubric>, "
            f"got {self.metric_for_best_model!r}",
        )
        _require(self.early_stopping_patience >= 0, "TrainingSpec.early_stopping_patience must be >= 0")


@dataclass(frozen=True)
class Profile:
    """What `--profile cpu` swaps in where the declared model cannot run: a model and a short schedule."""

    model: ModelSpec
    """Usually ModelSpec('embedded'), the shipped tiny GPT-NeoX-Japanese."""
    training: TrainingSpec
    """The short schedule."""
    eval_every: int
    """Evaluation interval under this profile."""
    lora: LoraSpec | None = None
    """LoRA override (None keeps the experiment's)."""
    generation: GenerationSpec | None = None
    """Generation override (None keeps the experiment's)."""

    def __post_init__(self) -> None:
        _check_types(self)


def _check_best_model(where: str, training: TrainingSpec, eval_every: int, names: tuple[str, ...]) -> None:
    metric = training.metric_for_best_model
    _require(
        metric is None or metric.removeprefix("eval_rubric/") in names,
        f"{where}.metric_for_best_model: {metric!r} names no rubric of this experiment; use eval_rubric/ + one of "
        f"{', '.join(names)}",
    )
    _require(
        not training.load_best_model_at_end or (training.save_steps or eval_every) % eval_every == 0,
        f"{where}.save_steps must be a multiple of eval_every ({eval_every}) with load_best_model_at_end",
    )


@dataclass(frozen=True)
class Experiment:
    """One fine-tuning experiment: model, LoRA, data and cleaning, scenarios, rubrics, schedule."""

    model: ModelSpec
    lora: LoraSpec
    data: DataSpec
    scenarios: tuple[Scenario, ...]
    rubrics: tuple[Rubric, ...]
    training: TrainingSpec
    eval_every: int
    """Evaluate at step 0, then every this many steps, and at the end."""
    cleaning: tuple[Rule, ...] = ()
    """Ordered HojiChar filters (a list, tuple or `hojichar.Compose`) applied to every document before training."""
    cleaning_variants: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    """Named alternative rule sets a run or a sweep picks with the setting `cleaning=NAME` (README "Sweeps")."""
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    cpu: Profile | None = None
    """The fallback profile used where the declared model cannot run."""
    gate: GateSpec | None = None
    """What `harness gate` trains and tolerates; None: the experiment has no gate."""
    watches: tuple[Watch, ...] | None = None
    """Rules over the rubric curves that alert (and may stop) during training; None: the defaults (README: Watches)
    for this experiment's rubrics; () watches nothing."""
    name: str = ""
    """Set by the loader from the file name; the run-name prefix."""

    def __post_init__(self) -> None:
        if (rules := as_rules(self.cleaning)) is not None:
            object.__setattr__(self, "cleaning", rules)
        if isinstance(self.cleaning_variants, dict):
            variants = {k: as_rules(v) for k, v in self.cleaning_variants.items()}
            bad = sorted(str(k) for k, v in variants.items() if v is None or not isinstance(k, str))
            _require(not bad, f"Experiment.cleaning_variants: {bad} must name a list of HojiChar filters or a Compose")
            object.__setattr__(self, "cleaning_variants", variants)
        if isinstance(self.rubrics, tuple | list):
            object.__setattr__(self, "rubrics", tuple(_rubric(r) for r in self.rubrics))
        _check_types(self)
        _require(len(self.scenarios) > 0, "Experiment.scenarios must hold at least one Scenario")
        names = [s.name for s in self.scenarios]
        dupes = sorted({n for n in names if names.count(n) > 1})
        _require(not dupes, f"Experiment.scenarios: duplicate scenario names {dupes}")
        _require(len(self.rubrics) > 0, "Experiment.rubrics must hold at least one rubric")
        _require(not (self.training.fsdp and self.model.quantization), "TrainingSpec.fsdp: sharding quantized (QLoRA) "
                 "base weights is not supported; drop fsdp or ModelSpec.quantization")  # fmt: skip
        known = (*(r.name for r in self.rubrics), COMPOSITE)
        if self.watches is None:
            object.__setattr__(self, "watches", default_watches(known))
        _require(isinstance(self.watches, tuple), "Experiment.watches must be a tuple of watches")
        for watch in self.watches or ():
            _require(
                getattr(watch, "rubric", COMPOSITE) in known,
                f"{type(watch).__name__}.rubric: {getattr(watch, 'rubric', '')!r} is not a rubric of this experiment "
                f"({', '.join(known)})",
            )
        if self.gate is not None:
            unknown = sorted(set(self.gate.tolerances) - {r.name for r in self.rubrics})
            _require(not unknown, f"GateSpec.tolerances: {unknown} are not rubrics of this experiment")
        _require(
            0 < self.eval_every <= self.training.max_steps,
            f"Experiment.eval_every must be in 1..training.max_steps ({self.training.max_steps}), "
            f"got {self.eval_every}",
        )
        if self.cpu is not None:
            _require(
                0 < self.cpu.eval_every <= self.cpu.training.max_steps,
                f"Experiment.cpu.eval_every must be in 1..cpu.training.max_steps ({self.cpu.training.max_steps}), "
                f"got {self.cpu.eval_every}",
            )
        _check_best_model("training", self.training, self.eval_every, known)
        if self.cpu is not None:
            _check_best_model("cpu.training", self.cpu.training, self.cpu.eval_every, known)

    def for_profile(self, profile: str) -> Experiment:
        """The experiment as it runs under `profile` ('full' is as declared, 'cpu' swaps in `self.cpu`)."""
        if profile == "full":
            return self
        if profile != "cpu":
            raise UserError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
        if self.cpu is None:
            raise UserError(f"experiment {self.name!r} declares no cpu profile (Experiment.cpu)")
        return dataclasses.replace(
            self,
            model=self.cpu.model,
            training=self.cpu.training,
            eval_every=self.cpu.eval_every,
            lora=self.cpu.lora or self.lora,
            generation=self.cpu.generation or self.generation,
        )

    def eval_steps(self) -> tuple[int, ...]:
        """Every step at which the scenarios are evaluated: 0, each multiple of eval_every, and the last step."""
        steps = set(range(0, self.training.max_steps + 1, self.eval_every)) | {self.training.max_steps}
        return tuple(sorted(steps))

    def to_config(self) -> dict[str, Any]:
        """A JSON-able description for the run log and W&B config."""
        return {
            "name": self.name,
            "model": dataclasses.asdict(self.model),
            "lora": dataclasses.asdict(self.lora),
            "data": dataclasses.asdict(self.data),
            "cleaning": [rule_name(r) for r in self.cleaning],
            "scenarios": [dataclasses.asdict(s) for s in self.scenarios],
            "rubrics": {r.name: r.version for r in self.rubrics},
            "training": dataclasses.asdict(self.training),
            "eval_every": self.eval_every,
            "eval_steps": list(self.eval_steps()),
            "generation": dataclasses.asdict(self.generation),
            "watches": [watch_config(w) for w in self.watches or ()],
        }
