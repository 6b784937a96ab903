"""The :class:`Model` base class and the small objects its methods receive."""

from __future__ import annotations

__all__ = ["Batch", "ConfigError", "Env", "Model", "CAPABILITIES"]

# The optional capabilities in the order describe lists them; "step" stands for start + step.
CAPABILITIES = ("train_step", "score", "next_logprobs", "step", "save", "load", "score_text", "translate")


class ConfigError(ValueError):
    """Invalid configuration or parameters: answered as JSON-RPC ``-32602`` (invalid params).

    Raise it from :meth:`Model.init` (or any method) for a bad ``plugin_config`` value; the
    message names the field, which arbench shows to the user::

        raise ConfigError("hidden: must be a positive integer, got -3")
        raise ConfigError("hidden", "must be a positive integer, got -3")   # the same message

    ``field`` holds the field's name (the text before the first colon) or None.
    """

    def __init__(self, field_or_message, message: str | None = None):
        if message is None:
            text = str(field_or_message)
            field = text.split(":", 1)[0].strip() if ":" in text else None
        else:
            field = str(field_or_message)
            text = "%s: %s" % (field, message)
        super().__init__(text)
        self.field = field


class Env:
    """What arbench tells :meth:`Model.init` about the run.

    Attributes:
        vocab: token ids are ``0 ... vocab-1``; next-token distributions have ``vocab`` entries.
        seq_len: the length of the rows.
        batch: training rows per step (0 when the run does not train).
        eval_batch: rows per evaluation call (0 when unknown).
    """

    __slots__ = ("vocab", "seq_len", "batch", "eval_batch", "source_len", "target_len")

    def __init__(self, vocab: int, seq_len: int = 0, batch: int = 0, eval_batch: int = 0,
                 source_len: int = 0, target_len: int = 0):
        self.vocab = vocab
        self.seq_len = seq_len
        self.batch = batch
        self.eval_batch = eval_batch
        self.source_len = source_len    # a conditional task's longest source (0 otherwise)
        self.target_len = target_len    # its longest decoder row: start, target, end

    def __repr__(self) -> str:
        return "Env(vocab=%d, seq_len=%d, batch=%d, eval_batch=%d)" % (
            self.vocab, self.seq_len, self.batch, self.eval_batch)


class Batch:
    """Rows of tokens for :meth:`Model.train_step` and :meth:`Model.score`.

    Attributes:
        inputs: an int32 :class:`~arbench_plugin.Array` of shape ``[B, T]``.
        targets: an int32 :class:`~arbench_plugin.Array` of shape ``[B, T]``: ``targets[i][t]``
            follows ``inputs[i][:t+1]``; ``-1`` marks a position that is not scored (padding).
    """

    __slots__ = ("inputs", "targets", "source")

    def __init__(self, inputs, targets, source=None):
        self.inputs = inputs
        self.targets = targets
        # A conditional model's int32 [B, S] source rows, padded with 0; None otherwise.
        self.source = source

    def __repr__(self) -> str:
        return "Batch(inputs=%r, targets=%r)" % (self.inputs, self.targets)


class Model:
    """Subclass this, set :attr:`family`, define :meth:`init` and the methods your model has.

    The capabilities that ``describe`` declares are the optional methods the subclass overrides:
    ``train_step``, ``score``, ``next_logprobs``, ``start`` together with ``step`` (declared as
    ``"step"``), ``save``, ``load`` and ``score_text``. arbench never calls one that is not declared; the SDK
    answers ``-32601`` (method not found) if it is called anyway.

    Arrays a method returns may be nested lists of floats, a flat ``array.array('f')`` (the SDK
    knows the shape), a NumPy float array, a PyTorch tensor or an :class:`~arbench_plugin.Array`;
    the SDK checks the shape and encodes them. Any exception a method raises is answered as
    ``-32000`` with the message ``str(exc)`` and the traceback; :class:`ConfigError` is answered
    as ``-32602``. ``print()`` is safe: while :func:`~arbench_plugin.serve` runs, standard output
    goes to standard error.

    Class attributes (reported by ``describe``):
        family: a short name for tables, e.g. ``"torch-rnn"`` (required).
        deterministic: True if the same seed and inputs give bitwise identical results.
        max_context: the longest input row the model accepts (0: unbounded); the SDK refuses
            longer rows with ``-32602``.
        flops_per_token: matrix-product FLOPs per token of a training step (0: unknown).
        runtime: what computes the model, for arbench's tables ("PyTorch 2.15.0, 2 threads");
            at most 200 printable characters, "" for none.
    """

    family: str = ""
    deterministic: bool = False
    max_context: int = 0
    flops_per_token: float = 0
    runtime: str = ""
    #: True for a model that reads a source (seq2seq tasks); it must define :meth:`translate`.
    conditional: bool = False
    #: The decoding settings an evaluation sweeps: dicts {"name", "params", "baseline"}.
    decode_settings: tuple = ()

    #: Set by the SDK before :meth:`init` is called: the run's :class:`Env`.
    env: Env | None = None

    def init(self, config: dict, env: Env, seed: int):
        """Build the model (and its optimiser) and return its number of parameters (or None).

        Args:
            config: the experiment's ``plugin_config`` (a dict, ``{}`` when absent). Validate it
                and raise :class:`ConfigError` naming a bad or unknown field.
            env: the run's :class:`Env` (``vocab``, ``seq_len``, ``batch``, ``eval_batch``).
            seed: an unsigned 64-bit integer to initialise the weights from (use
                ``seed % 2**32`` for generators that want 32 bits).
        """
        raise NotImplementedError("%s must define init(config, env, seed)" % type(self).__name__)

    def train_step(self, batch: Batch, step: int, lr: float, clip: float, seed: int) -> float:
        """One optimiser step; return the mean cross-entropy (nats per scored target) *before*
        the update.

        ``step`` counts from 1; ``lr`` is the learning rate of arbench's schedule for this step;
        ``clip`` the global gradient-norm clip (0: none); ``seed`` seeds this step's randomness.
        A float, a NumPy scalar or a 0-d tensor is fine; a non-finite loss stops the run as
        diverged.
        """
        raise NotImplementedError

    def score(self, batch: Batch):
        """Return float32 ``[B, T]``: ``log p(targets[i][t] | inputs[i][:t+1])`` in nats, 0 where
        the target is -1. Evaluation mode: no dropout, no update."""
        raise NotImplementedError

    def next_logprobs(self, inputs):
        """``inputs`` is an int32 ``[B, T]`` :class:`~arbench_plugin.Array`; return float32
        ``[B, T, V]`` (``V = env.vocab``): the next-token log-distribution after each prefix."""
        raise NotImplementedError

    def start(self, prompts):
        """``prompts`` is an int32 ``[B, P]`` Array (``P >= 1``); return a tuple ``(state, logprobs)``:
        any Python object holding the generation state (the SDK names it and keeps the 16 most
        recently used) and float32 ``[B, V]``, the next-token log-distribution after the prompt.
        Define :meth:`step` too."""
        raise NotImplementedError

    def step(self, state, tokens):
        """Advance ``state`` (the object :meth:`start` returned) by ``tokens``, an int32 ``[B]``
        Array, and return float32 ``[B, V]``. Update ``state`` in place (keep it in a list, a
        dict or your own class): the SDK keeps the same object for the next call."""
        raise NotImplementedError

    def save(self, path: str) -> None:
        """Write the weights to ``path`` (arbench picks it; it ends in ``.safetensors``)."""
        raise NotImplementedError

    def load(self, path: str) -> None:
        """Read the weights from ``path`` (written by :meth:`save` or by arbench)."""
        raise NotImplementedError

    def score_text(self, texts):
        """Tokenizer-independent scoring: ``texts`` is a list of ``bytes``; return one number per
        text, the total negative log-likelihood in nats of its bytes under the model's own
        tokenizer, each text scored from an empty context. arbench's text task then reports bits
        per byte (total nats over bytes), comparable with any tokenization. A model that also
        defines :meth:`score` is scored through :meth:`score` (byte tokens)."""
        raise NotImplementedError

    def translate(self, sources, options):
        """A conditional model's own decoding. ``sources`` is an int32 ``[B, S]`` Array (0 pads);
        ``options`` has ``start``, ``end``, ``max_len`` (the longest output, end included),
        ``setting`` (a ``decode_settings`` name, ``""`` for the default) and ``length`` (when > 0,
        every output is exactly that many tokens, no end token). Return a dict with ``outputs``
        (B lists of token ids without the end token), ``passes`` (decoder passes over the
        batch) and optionally ``lengths`` (the chosen length per row, end included) and
        ``stats`` (names to numbers)."""
        raise NotImplementedError

    def close(self) -> None:
        """Called once when :func:`~arbench_plugin.serve` ends (shutdown or end of input)."""

    @classmethod
    def capabilities(cls) -> list:
        """The capabilities ``describe`` declares, from the methods ``cls`` overrides."""
        caps = []
        for name in CAPABILITIES:
            if name == "step":
                has_start, has_step = _overrides(cls, "start"), _overrides(cls, "step")
                if has_start != has_step:
                    raise TypeError("%s defines %s but not %s: stateful generation needs both"
                                    % (cls.__name__, *(("start", "step") if has_start else ("step", "start"))))
                if has_start:
                    caps.append("step")
            elif _overrides(cls, name):
                caps.append(name)
        return caps

    @classmethod
    def describe(cls) -> dict:
        """The result of the ``describe`` call; raises TypeError for an ill-defined subclass."""
        if not isinstance(cls.family, str) or not cls.family:
            raise TypeError("%s must set the class attribute family (a short name, e.g. \"torch-rnn\")" % cls.__name__)
        if not _overrides(cls, "init"):
            raise TypeError("%s must define init(config, env, seed)" % cls.__name__)
        if not isinstance(cls.deterministic, bool):
            raise TypeError("%s.deterministic must be True or False" % cls.__name__)
        if isinstance(cls.max_context, bool) or not isinstance(cls.max_context, int) or cls.max_context < 0:
            raise TypeError("%s.max_context must be an integer >= 0 (0: unbounded)" % cls.__name__)
        fpt = cls.flops_per_token
        if isinstance(fpt, bool) or not isinstance(fpt, (int, float)) or not fpt >= 0 or fpt == float("inf"):
            raise TypeError("%s.flops_per_token must be a finite number >= 0 (0: unknown)" % cls.__name__)
        if not isinstance(cls.runtime, str) or len(cls.runtime) > 200 or not cls.runtime.isprintable():
            raise TypeError("%s.runtime must be a string of at most 200 printable characters" % cls.__name__)
        if not isinstance(cls.conditional, bool):
            raise TypeError("%s.conditional must be True or False" % cls.__name__)
        if cls.conditional != _overrides(cls, "translate"):
            raise TypeError("%s: a conditional model defines translate, and only a conditional one does" % cls.__name__)
        settings = [_decode_setting(cls.__name__, s) for s in cls.decode_settings]
        if sum(s["baseline"] for s in settings) > 1:
            raise TypeError("%s.decode_settings: at most one baseline" % cls.__name__)
        return {
            "protocol": 1,
            "family": cls.family,
            "capabilities": cls.capabilities(),
            "deterministic": cls.deterministic,
            "max_context": cls.max_context,
            "flops_per_token": fpt,
            "conditional": cls.conditional,
            "decode_settings": settings,
            "runtime": cls.runtime,
        }


def _decode_setting(owner: str, s) -> dict:
    """A decode_settings entry as describe sends it, or TypeError."""
    if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"]:
        raise TypeError("%s.decode_settings: each entry is a dict with a non-empty name, got %r" % (owner, s))
    params = s.get("params", {})
    if not isinstance(params, dict):
        raise TypeError("%s.decode_settings[%r].params must be a dict" % (owner, s["name"]))
    return {"name": s["name"], "params": params, "baseline": bool(s.get("baseline", False))}


def _overrides(cls, name: str) -> bool:
    fn = getattr(cls, name, None)
    return callable(fn) and fn is not getattr(Model, name)
