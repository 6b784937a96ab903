"""The protocol loop: :func:`serve` reads JSON-RPC requests and answers them from a Model."""

from __future__ import annotations

import base64
import binascii
import collections
import json
import math
import os
import sys
import traceback

from .arrays import ArrayError, decode_array, encode_array
from .model import Batch, ConfigError, Env, Model

__all__ = ["serve", "PROTOCOL_VERSION", "MAX_STATES",
           "PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS", "MODEL_ERROR"]

PROTOCOL_VERSION = 1
#: How many generation states the SDK keeps (the most recently used ones).
MAX_STATES = 16
#: Tracebacks longer than this (characters) are cut to their last part in the error's data.
MAX_TRACEBACK = 64 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
MODEL_ERROR = -32000

# method -> the capability that must be declared for it
_OPTIONAL_METHODS = {
    "train_step": "train_step", "score": "score", "next_logprobs": "next_logprobs",
    "start": "step", "step": "step", "save": "save", "load": "load", "score_text": "score_text",
    "translate": "translate",
}


class RPCError(Exception):
    """An error response: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _fmt_shape(shape) -> str:
    return "[" + " ".join(str(d) for d in shape) + "]"


def _json_float(x: float):
    """A JSON-safe float: JSON has no NaN or infinity, so those travel as the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``."""
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def _get_int(params: dict, key: str, default=None, minimum=None, prefix: str = "") -> int:
    if key not in params or params[key] is None:
        if default is None:
            raise RPCError(INVALID_PARAMS, "%s%s: missing" % (prefix, key))
        return default
    v = params[key]
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or (minimum is not None and v < minimum):
        raise RPCError(INVALID_PARAMS, "%s%s: want an integer%s, got %r"
                       % (prefix, key, "" if minimum is None else " >= %d" % minimum, v))
    return v


def _get_float(params: dict, key: str, default: float) -> float:
    v = params.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RPCError(INVALID_PARAMS, "%s: want a number, got %r" % (key, v))
    return float(v)


def _get_str(params: dict, key: str) -> str:
    v = params.get(key)
    if not isinstance(v, str) or not v:
        raise RPCError(INVALID_PARAMS, "%s: want a non-empty string, got %r" % (key, v))
    return v


def _get_array(params: dict, key: str, ndim: int):
    if key not in params:
        raise RPCError(INVALID_PARAMS, "%s: missing" % key)
    try:
        return decode_array(params[key], name=key, dtype="int32", ndim=ndim)
    except ArrayError as exc:
        raise RPCError(INVALID_PARAMS, str(exc)) from None


class _Server:
    """Dispatches decoded requests to one model; :func:`serve` feeds it lines."""

    def __init__(self, model: Model):
        if not isinstance(model, Model):
            raise TypeError("serve() wants an instance of an arbench_plugin.Model subclass, got %r" % (model,))
        self.model = model
        self.name = type(model).__name__
        self.description = type(model).describe()  # raises TypeError for an ill-defined class
        self.caps = set(self.description["capabilities"])
        self.env = None
        self.states = collections.OrderedDict()  # id -> [state object, rows]
        self.next_state = 1

    # --- one line in, one line out ---------------------------------------------------------

    def handle(self, line):
        """Answer one request line: returns (the response line, without newline; stop after it)."""
        try:
            req = json.loads(line)
        except ValueError as exc:
            return self._dump(None, error=RPCError(PARSE_ERROR, "parse error: %s" % exc)), False
        if not isinstance(req, dict):
            return self._dump(None, error=RPCError(INVALID_REQUEST, "invalid request: not a JSON object")), False
        rid = req.get("id")
        method = req.get("method")
        if "id" not in req or isinstance(rid, (bool, float, list, dict)):
            return self._dump(rid if isinstance(rid, (int, str)) and not isinstance(rid, bool) else None,
                              error=RPCError(INVALID_REQUEST, "invalid request: want an integer or string id "
                                             "(the protocol has no notifications)")), False
        if not isinstance(method, str):
            return self._dump(rid, error=RPCError(INVALID_REQUEST, "invalid request: method must be a string")), False
        params = req.get("params")
        if params is None:
            params = {}
        try:
            if not isinstance(params, dict):
                raise RPCError(INVALID_PARAMS, "params must be a JSON object")
            result = self.dispatch(method, params)
        except RPCError as exc:
            return self._dump(rid, error=exc), False
        return self._dump(rid, result=result, method=method), method == "shutdown"

    @staticmethod
    def _dump(rid, result=None, error=None, method=""):
        resp = {"jsonrpc": "2.0", "id": rid}
        if error is None:
            resp["result"] = result
        else:
            err = {"code": error.code, "message": error.message}
            if error.data is not None:
                err["data"] = error.data
            resp["error"] = err
        try:
            return json.dumps(resp, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            resp.pop("result", None)
            resp["error"] = {"code": MODEL_ERROR, "message": "%s: cannot encode the result as JSON: %s" % (method, exc)}
            return json.dumps(resp, separators=(",", ":"))

    # --- methods -----------------------------------------------------------------------------

    def dispatch(self, method: str, params: dict):
        if method == "describe":
            return self.description
        if method == "init":
            return self.init(params)
        if method == "shutdown":
            return {}
        cap = _OPTIONAL_METHODS.get(method)
        if cap is None:
            raise RPCError(METHOD_NOT_FOUND, "method not found: %s" % method)
        if cap not in self.caps:
            raise RPCError(METHOD_NOT_FOUND, "method not found: %s (%s does not declare the %s capability)"
                           % (method, self.name, cap))
        if self.env is None:
            raise RPCError(MODEL_ERROR, "%s called before init" % method)
        return getattr(self, "m_" + method)(params)

    def _call(self, fn, *args):
        """Run user code; its exceptions become error responses."""
        try:
            return fn(*args)
        except ConfigError as exc:
            raise RPCError(INVALID_PARAMS, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - every failure of the model is reported
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next))
            if len(tb) > MAX_TRACEBACK:
                tb = "...\n" + tb[-MAX_TRACEBACK:]
            raise RPCError(MODEL_ERROR, str(exc) or type(exc).__name__, tb) from None

    def _logprobs(self, value, want, method: str) -> dict:
        try:
            return encode_array(value, "float32", want, name="logprobs")
        except ArrayError as exc:
            raise RPCError(MODEL_ERROR, "%s.%s returned %s" % (self.name, method, exc)) from None

    def _check_context(self, arr, key: str):
        mc = self.description["max_context"]
        if mc and arr.shape[1] > mc:
            raise RPCError(INVALID_PARAMS, "%s: rows of length %d exceed max_context %d" % (key, arr.shape[1], mc))

    def _batch(self, params: dict) -> Batch:
        inputs = _get_array(params, "inputs", 2)
        targets = _get_array(params, "targets", 2)
        if targets.shape != inputs.shape:
            raise RPCError(INVALID_PARAMS, "targets: shape %s, want %s (the shape of inputs)"
                           % (_fmt_shape(targets.shape), _fmt_shape(inputs.shape)))
        self._check_context(inputs, "inputs")
        source = None
        if "source" in params:
            if not self.description["conditional"]:
                raise RPCError(INVALID_PARAMS, "source: %s is not conditional (it reads no source)" % self.name)
            source = _get_array(params, "source", 2)
            if source.shape[0] != inputs.shape[0]:
                raise RPCError(INVALID_PARAMS, "source: shape %s, want %d rows (those of inputs)"
                               % (_fmt_shape(source.shape), inputs.shape[0]))
        elif self.description["conditional"]:
            raise RPCError(INVALID_PARAMS, "source: missing (%s is conditional)" % self.name)
        return Batch(inputs, targets, source)

    def init(self, params: dict):
        config = params.get("config")
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise RPCError(INVALID_PARAMS, "config: want a JSON object, got %s" % type(config).__name__)
        env_p = params.get("env")
        if not isinstance(env_p, dict):
            raise RPCError(INVALID_PARAMS, "env: want an object {vocab, seq_len, batch, eval_batch}")
        env = Env(vocab=_get_int(env_p, "vocab", minimum=1, prefix="env."),
                  seq_len=_get_int(env_p, "seq_len", 0, minimum=0, prefix="env."),
                  batch=_get_int(env_p, "batch", 0, minimum=0, prefix="env."),
                  eval_batch=_get_int(env_p, "eval_batch", 0, minimum=0, prefix="env."),
                  source_len=_get_int(env_p, "source_len", 0, minimum=0, prefix="env."),
                  target_len=_get_int(env_p, "target_len", 0, minimum=0, prefix="env."))
        seed = _get_int(params, "seed", 0, minimum=0)
        self.env = None
        self.states.clear()
        self.model.env = env
        n = self._call(self.model.init, config, env, seed)
        if n is None:
            n = 0
        try:
            params_n = int(n)
        except (TypeError, ValueError):
            raise RPCError(MODEL_ERROR, "%s.init must return the number of parameters (an int) or None, got %r"
                           % (self.name, n)) from None
        self.env = env
        return {"params": params_n}

    def m_train_step(self, params: dict):
        batch = self._batch(params)
        step = _get_int(params, "step", 0)
        lr = _get_float(params, "lr", 0.0)
        clip = _get_float(params, "clip", 0.0)
        seed = _get_int(params, "seed", 0, minimum=0)
        loss = self._call(self.model.train_step, batch, step, lr, clip, seed)
        try:
            loss = float(loss)
        except (TypeError, ValueError):
            raise RPCError(MODEL_ERROR, "%s.train_step must return the loss (a number), got %s"
                           % (self.name, type(loss).__name__)) from None
        return {"loss": _json_float(loss)}

    def m_score(self, params: dict):
        batch = self._batch(params)
        out = self._call(self.model.score, batch)
        return {"logprobs": self._logprobs(out, batch.targets.shape, "score")}

    def m_next_logprobs(self, params: dict):
        inputs = _get_array(params, "inputs", 2)
        self._check_context(inputs, "inputs")
        out = self._call(self.model.next_logprobs, inputs)
        return {"logprobs": self._logprobs(out, inputs.shape + (self.env.vocab,), "next_logprobs")}

    def m_start(self, params: dict):
        prompts = _get_array(params, "prompts", 2)
        if prompts.shape[1] < 1:
            raise RPCError(INVALID_PARAMS, "prompts: shape %s, want at least one token per row" % _fmt_shape(prompts.shape))
        self._check_context(prompts, "prompts")
        out = self._call(self.model.start, prompts)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise RPCError(MODEL_ERROR, "%s.start must return (state, logprobs), a tuple, got %s"
                           % (self.name, type(out).__name__))
        state, lp = out
        rows = prompts.shape[0]
        enc = self._logprobs(lp, (rows, self.env.vocab), "start")
        sid = self.next_state
        self.next_state += 1
        self.states[sid] = [state, rows]
        while len(self.states) > MAX_STATES:
            self.states.popitem(last=False)
        return {"state": sid, "logprobs": enc}

    def m_step(self, params: dict):
        sid = params.get("state")
        if isinstance(sid, str) and sid.isdigit():
            sid = int(sid)
        if isinstance(sid, bool) or sid not in self.states:
            raise RPCError(INVALID_PARAMS, "state: %r is unknown or forgotten (the plugin keeps the %d most "
                           "recently used states)" % (sid, MAX_STATES))
        tokens = _get_array(params, "tokens", 1)
        state, rows = self.states[sid]
        if tokens.shape[0] != rows:
            raise RPCError(INVALID_PARAMS, "tokens: shape %s, want [%d] (the state's rows)" % (_fmt_shape(tokens.shape), rows))
        self.states.move_to_end(sid)
        out = self._call(self.model.step, state, tokens)
        return {"logprobs": self._logprobs(out, (rows, self.env.vocab), "step")}

    def m_score_text(self, params: dict):
        texts = params.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise RPCError(INVALID_PARAMS, "texts: want a list of base64 strings, got %r" % type(texts).__name__)
        try:
            raw = [base64.b64decode(t, validate=True) for t in texts]
        except (binascii.Error, ValueError) as exc:
            raise RPCError(INVALID_PARAMS, "texts: not base64: %s" % exc) from None
        out = self._call(self.model.score_text, raw)
        try:
            nats = [float(x) for x in out]
        except (TypeError, ValueError):
            raise RPCError(MODEL_ERROR, "%s.score_text must return one number per text" % self.name) from None
        if len(nats) != len(raw):
            raise RPCError(MODEL_ERROR, "%s.score_text returned %d totals for %d texts" % (self.name, len(nats), len(raw)))
        return {"nats": [_json_float(x) for x in nats]}

    def m_translate(self, params: dict):
        sources = _get_array(params, "sources", 2)
        options = TranslateOptions(
            start=_get_int(params, "start"), end=_get_int(params, "end"),
            max_len=_get_int(params, "max_len", 0, minimum=0), setting=params.get("setting") or "",
            length=_get_int(params, "length", 0, minimum=0))
        names = [s["name"] for s in self.description["decode_settings"]]
        if options.setting and options.setting not in names:
            raise RPCError(INVALID_PARAMS, "setting: %r is not one of the decode settings %s" % (options.setting, names))
        out = self._call(self.model.translate, sources, options)
        return _translation(self.name, out, sources.shape[0], options.length)

    def m_save(self, params: dict):
        self._call(self.model.save, _get_str(params, "path"))
        return {}

    def m_load(self, params: dict):
        self._call(self.model.load, _get_str(params, "path"))
        return {}


def _protocol_output():
    """Take the process's standard output for the protocol.

    Returns (stream, restore): the protocol stream on a duplicate of file descriptor 1, after
    pointing descriptor 1 itself at standard error, so that whatever else writes to standard
    output -- Python's ``print``, ``sys.__stdout__``, C extensions, child processes -- lands on
    standard error. Falls back to ``sys.stdout`` as it is when it has no file descriptor.
    """
    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stdout, lambda: None
    proto_fd = os.dup(fd)
    try:
        sys.stderr.flush()
        os.dup2(sys.stderr.fileno(), fd)
    except (AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    stream = os.fdopen(proto_fd, "w", encoding="utf-8", newline="\n")

    def restore():
        try:
            sys.__stdout__.flush()
        except (AttributeError, OSError, ValueError):
            pass
        try:
            stream.flush()
            os.dup2(proto_fd, fd)
        except OSError:
            pass
        try:
            stream.close()
        except OSError:
            pass

    return stream, restore


def serve(model: Model, stdin=None, stdout=None) -> None:
    """Answer arbench's requests with ``model`` until ``shutdown`` or the end of input.

    Reads one JSON-RPC request per line from ``stdin`` (default: the process's standard input)
    and writes one compact JSON response line to ``stdout`` (default: the process's standard
    output), flushing after each. While it runs, ``sys.stdout`` is ``sys.stderr``, and when
    ``stdout`` is the default the process's file descriptor 1 points at standard error too, so
    nothing but protocol messages reaches the protocol stream; both are restored on return.

    Returns after answering ``shutdown`` (with ``{}``) or at the end of input; then let the
    script end (exit status 0). Raises TypeError before reading anything if the model's class is
    ill-defined (no ``family``, no ``init``, ``start`` without ``step``).
    """
    server = _Server(model)
    if os.environ.get("ARBENCH_PROTOCOL", "1") != "1":
        sys.stderr.write("arbench_plugin: ARBENCH_PROTOCOL=%s, this SDK speaks protocol %d\n"
                         % (os.environ["ARBENCH_PROTOCOL"], PROTOCOL_VERSION))
    if stdin is None:
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
    if stdout is None:
        out, restore = _protocol_output()
    else:
        out, restore = stdout, lambda: None
    saved_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        while True:
            line = stdin.readline()
            if not line:
                break  # end of input: arbench is gone or done
            if not line.strip():
                continue
            response, stop = server.handle(line)
            out.write(response)
            out.write("\n")
            out.flush()
            if stop:
                break
    except BrokenPipeError:
        pass  # arbench closed the pipe: nobody is listening any more
    except KeyboardInterrupt:
        sys.stderr.write("arbench_plugin: interrupted\n")
        raise SystemExit(130) from None
    finally:
        try:
            model.close()
        except Exception:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
        sys.stdout = saved_stdout
        try:
            restore()
        except BrokenPipeError:
            pass


class TranslateOptions:
    """What :meth:`Model.translate` is asked: ``start``, ``end``, ``max_len``, ``setting``,
    ``length`` (see PROTOCOL.md)."""

    __slots__ = ("start", "end", "max_len", "setting", "length")

    def __init__(self, start: int, end: int, max_len: int = 0, setting: str = "", length: int = 0):
        self.start, self.end, self.max_len, self.setting, self.length = start, end, max_len, setting, length

    def __repr__(self) -> str:
        return "TranslateOptions(start=%d, end=%d, max_len=%d, setting=%r, length=%d)" % (
            self.start, self.end, self.max_len, self.setting, self.length)


def _translation(name: str, out, rows: int, length: int) -> dict:
    """Check a translate result and return it as the protocol sends it."""
    def bad(msg):
        return RPCError(MODEL_ERROR, "%s.translate returned %s" % (name, msg))
    if not isinstance(out, dict):
        raise bad("a %s, want a dict with outputs and passes" % type(out).__name__)
    outputs = out.get("outputs")
    try:
        outputs = [[int(t) for t in row] for row in outputs]
    except (TypeError, ValueError):
        raise bad("outputs that are not lists of token ids") from None
    if len(outputs) != rows:
        raise bad("%d outputs for %d sources" % (len(outputs), rows))
    if length > 0 and any(len(o) != length for o in outputs):
        raise bad("outputs not of the forced length %d" % length)
    passes = out.get("passes")
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 0:
        raise bad("passes %r, want an integer >= 0" % (passes,))
    result = {"outputs": outputs, "passes": passes, "lengths": None, "stats": None}
    if out.get("lengths") is not None:
        lengths = [int(n) for n in out["lengths"]]
        if len(lengths) != rows:
            raise bad("%d lengths for %d sources" % (len(lengths), rows))
        result["lengths"] = lengths
    if out.get("stats") is not None:
        result["stats"] = {str(k): _json_float(float(v)) for k, v in dict(out["stats"]).items()}
    return result
