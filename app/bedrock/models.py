"""Anthropic model name -> Bedrock inference profile id + what that model supports on Bedrock.

Order: ``overrides`` (exact Anthropic id -> Bedrock id, used verbatim) win; then ``MODELS`` (every
current Claude model, keyed by its undated Anthropic id); then any other ``claude-*`` id maps to
``anthropic.<id>`` (the naming of the newest Bedrock ids); anything else raises ``NotFound``.

Current Claude models are not offered with on-demand throughput under their foundation-model id
("Invocation of model ID ... with on-demand throughput isn't supported"), so every default id is an
inference profile: ``<profile_prefix>.<foundation id>``.
Sources: https://platform.claude.com/docs/en/build-with-claude/claude-on-amazon-bedrock-legacy
(model table and geographies), https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import NotFound

_ALL_GEOS = frozenset({"global", "us", "eu", "apac", "jp", "au"})


@dataclass(frozen=True)
class BedrockModel:
    """A resolved model: ``model_id`` goes to Converse, ``anthropic_model`` is what the client asked for."""

    model_id: str
    anthropic_model: str
    base_id: str = ""  # the MODELS key this resolved through ("" for an unknown override target)
    supports_thinking: bool = True  # thinking {type: enabled, budget_tokens}
    supports_adaptive_thinking: bool = False  # thinking {type: adaptive}
    adaptive_thinking_only: bool = False  # thinking {type: enabled, budget_tokens} is a 400 (Opus 4.7+)
    supports_interleaved_thinking: bool = True  # beta interleaved-thinking-2025-05-14 (Claude 4+)
    supports_effort: bool = False  # output_config.effort
    supports_cache_points: bool = True  # Converse cachePoint blocks (prompt caching)
    supports_context_1m: bool = False  # beta context-1m-2025-08-07
    context_1m: bool = False  # the client asked for the 1M window with a "[1m]" suffix
    supports_cache_ttl_1h: bool = False  # cachePoint.ttl "1h" (Claude 4.5 and later; prompt-caching.html)
    foundation_id: str = ""  # the foundation-model id ("" when unknown: an ARN override); CountTokens takes it

    @property
    def count_tokens_model_id(self) -> str:
        """The modelId for CountTokens, which takes foundation-model ids, not inference profiles
        (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokens.html: "The unique
        identifier or ARN of the foundation model"); ``model_id`` when the foundation id is unknown."""
        return self.foundation_id or self.model_id


@dataclass(frozen=True)
class _Entry:
    foundation_id: str
    geos: frozenset[str] = _ALL_GEOS
    thinking: bool = True
    adaptive: bool = False
    adaptive_only: bool = False
    interleaved: bool = True
    effort: bool = False
    cache: bool = True
    context_1m: bool = False
    cache_ttl_1h: bool = False


def _newest(foundation_id: str, *, adaptive_only: bool = True) -> _Entry:
    """The capability set of the newest generation (Opus 4.7 and later: adaptive thinking only;
    Opus/Sonnet 4.6 pass ``adaptive_only=False``)."""
    return _Entry(foundation_id, adaptive=True, adaptive_only=adaptive_only, effort=True, context_1m=True,
                  cache_ttl_1h=True)


# Adaptive-only (thinking {type: enabled} answered with 400): Opus 4.7 and later, per
# https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-adaptive-thinking.html
# ("Claude Opus 4.7 ... only support adaptive thinking"); newer generations are assumed to keep that rule.
# Ids marked (derived) are not yet in a table we could read; they follow the newest documented
# pattern ("anthropic.claude-sonnet-4-6": no date, no version suffix). See docs/translation.md.
MODELS: dict[str, _Entry] = {
    "claude-opus-5-5": _newest("anthropic.claude-opus-5-5"),  # (derived)
    "claude-sonnet-5-5": _newest("anthropic.claude-sonnet-5-5"),  # (derived)
    "claude-haiku-5-5": _Entry("anthropic.claude-haiku-5-5", adaptive=True, adaptive_only=True,
                               effort=True, cache_ttl_1h=True),  # (derived)
    "claude-opus-5": _newest("anthropic.claude-opus-5"),  # (derived)
    "claude-sonnet-5": _newest("anthropic.claude-sonnet-5"),  # (derived)
    "claude-opus-4-8": _newest("anthropic.claude-opus-4-8"),  # (derived)
    "claude-opus-4-7": _newest("anthropic.claude-opus-4-7"),  # (derived)
    "claude-opus-4-6": _newest("anthropic.claude-opus-4-6-v1", adaptive_only=False),
    "claude-sonnet-4-6": _newest("anthropic.claude-sonnet-4-6", adaptive_only=False),
    "claude-haiku-4-5": _Entry("anthropic.claude-haiku-4-5-20251001-v1:0", cache_ttl_1h=True),
    "claude-opus-4-5": _Entry("anthropic.claude-opus-4-5-20251101-v1:0", effort=True, cache_ttl_1h=True),
    "claude-sonnet-4-5": _Entry("anthropic.claude-sonnet-4-5-20250929-v1:0", context_1m=True, cache_ttl_1h=True),
    "claude-opus-4-1": _Entry("anthropic.claude-opus-4-1-20250805-v1:0", geos=frozenset({"us"})),
    "claude-opus-4": _Entry("anthropic.claude-opus-4-20250514-v1:0", geos=frozenset({"us"})),
    "claude-sonnet-4": _Entry("anthropic.claude-sonnet-4-20250514-v1:0", context_1m=True),
    "claude-3-7-sonnet": _Entry("anthropic.claude-3-7-sonnet-20250219-v1:0",
                                geos=frozenset({"us", "eu", "apac"}), interleaved=False),
    "claude-3-5-haiku": _Entry("anthropic.claude-3-5-haiku-20241022-v1:0", geos=frozenset({"us"}),
                               thinking=False, interleaved=False),
    "claude-3-5-sonnet": _Entry("anthropic.claude-3-5-sonnet-20241022-v2:0", geos=frozenset({"us", "apac"}),
                                thinking=False, interleaved=False, cache=False),
}

# Anthropic aliases that are not "<base>-<yyyymmdd>" / "<base>-latest" spellings.
ALIASES = {"claude-opus-4-0": "claude-opus-4", "claude-sonnet-4-0": "claude-sonnet-4"}

_SUFFIX = re.compile(r"\[[^\]]*\]$")  # "[1m]"
_DATE = re.compile(r"-(\d{8}|latest)$")
_PREFIXES = ("anthropic/", "anthropic.")


def normalize(anthropic_model: str) -> tuple[str, bool]:
    """``"claude-sonnet-4-5-20250929[1m]"`` -> ``("claude-sonnet-4-5", True)`` (base id, 1M asked for)."""
    name = anthropic_model.strip().lower()
    suffix = _SUFFIX.search(name)
    context_1m = bool(suffix and suffix.group(0) == "[1m]")
    name = _SUFFIX.sub("", name)
    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    name = _DATE.sub("", name)
    return ALIASES.get(name, name), context_1m


def profile_id(foundation_id: str, profile_prefix: str, geos: frozenset[str] = _ALL_GEOS) -> str:
    """``"anthropic.claude-opus-4-1-20250805-v1:0", "global"`` -> ``"us.anthropic..."``.

    ``global`` falls back to ``us`` for a model without a global profile (global allows any region);
    a named geography is kept even when the model lacks it, so data never silently leaves it
    (Bedrock then answers 400 and the operator sets an override).
    """
    prefix = (profile_prefix or "us").strip().lower().rstrip(".")
    if prefix == "global" and "global" not in geos:
        prefix = "us"
    return f"{prefix}.{foundation_id}"


def resolve_model(anthropic_model: str, *, overrides: dict[str, str], profile_prefix: str) -> BedrockModel:
    """Anthropic model id (as the client sent it) -> ``BedrockModel``.

    ``overrides`` are looked up by the exact id, then by its normalized base id (no date, no
    ``[1m]``); their values are used verbatim. Raises ``NotFound`` naming the model when it is not
    a Claude model.
    """
    base, context_1m = normalize(anthropic_model)
    entry = MODELS.get(base)
    if entry is None and base.startswith("claude-") and len(base) > len("claude-"):
        entry = _newest(f"anthropic.{base}")  # unknown Claude: assume newest naming and features
    override = overrides.get(anthropic_model) or overrides.get(base)
    if entry is None and override is None:
        raise NotFound(f"model: {anthropic_model or '(empty)'} is not available on Amazon Bedrock "
                       "through this proxy (not a Claude model and no model-map override)")
    entry = entry or _newest("")
    model_id = override or profile_id(entry.foundation_id, profile_prefix, entry.geos)
    return BedrockModel(
        model_id=model_id, anthropic_model=anthropic_model, base_id=base if base in MODELS else "",
        supports_thinking=entry.thinking, supports_adaptive_thinking=entry.adaptive,
        adaptive_thinking_only=entry.adaptive_only,
        supports_interleaved_thinking=entry.interleaved, supports_effort=entry.effort,
        supports_cache_points=entry.cache, supports_context_1m=entry.context_1m,
        context_1m=context_1m and entry.context_1m, supports_cache_ttl_1h=entry.cache_ttl_1h,
        foundation_id=_foundation_id(override, entry.foundation_id))


def _foundation_id(override: str | None, foundation_id: str) -> str:
    """The foundation-model id behind a resolved model: the table's, or an override's with its
    geography prefix (``us.``, ``global.``...) removed; "" for an ARN override (unknown)."""
    if not override:
        return foundation_id
    prefix, _, rest = override.partition(".")
    if override.startswith("arn:"):
        return ""
    return rest if prefix in _ALL_GEOS and rest else override
