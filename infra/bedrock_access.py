"""Which Bedrock models the task role may invoke, derived from the app's own model table (pure).

One source of truth: ``app/bedrock/models.py`` decides which Bedrock id a request falls back to
(``resolve_model``); this module asks it for every model in its table under the stack's profile
prefix, adds the operator's ``bedrockExtraModelIds`` (targets of admin model-map overrides), and
turns the ids into IAM statements. ``app.bedrock.models`` imports only ``app.errors`` (standard
library only), so the Pulumi program's virtualenv needs none of the app's dependencies
(tests/infra/test_bedrock_access.py pins that).

Cross-region inference needs two grants (docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html):
the inference profile in the source region, and the foundation model in every destination region
of the profile. The second grant is scoped by the geography's region pattern
(``infra.aws_facts.INFERENCE_PROFILE_REGION_PATTERNS``) and by the condition
``bedrock:InferenceProfileArn`` = a profile of this account and source region, so the foundation
models are only reachable through a profile, and the profiles themselves are listed one by one. Global profiles also need the region-less foundation-model ARN
(docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.bedrock.models import MODELS, resolve_model
from infra.aws_facts import INFERENCE_PROFILE_REGION_PATTERNS

PolicyStatement = dict[str, Any]

#: Converse/ConverseStream authorize as InvokeModel / InvokeModelWithResponseStream.
BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
BEDROCK_COUNT_TOKENS_ACTIONS = ("bedrock:CountTokens",)


@dataclass(frozen=True)
class BedrockTarget:
    """A Bedrock model id split into its parts: ``geography`` is the profile's first label
    (``us``, ``eu``, ``apac``, ``jp``, ``au``, ``global``) or None for a plain foundation-model id."""

    model_id: str
    foundation_id: str
    geography: str | None

    @property
    def is_profile(self) -> bool:
        return self.geography is not None


def parse_model_id(model_id: str) -> BedrockTarget:
    """``us.anthropic.claude-x`` -> profile of ``anthropic.claude-x`` in ``us``; ``anthropic.claude-x``
    -> a foundation-model id (on-demand, source region only)."""
    head, _, rest = model_id.partition(".")
    if head in INFERENCE_PROFILE_REGION_PATTERNS and rest:
        return BedrockTarget(model_id, rest, head)
    return BedrockTarget(model_id, model_id, None)


def routable_model_ids(profile_prefix: str, extra_model_ids: Iterable[str] = ()) -> tuple[str, ...]:
    """Every Bedrock id the app can send a fallback to: each entry of the app's model table resolved
    exactly as a request would be (``resolve_model`` with no overrides), plus ``extra_model_ids``.
    A bare foundation id among the extras is also allowed through the stack's profile geography,
    since an override may name either form. Sorted, without duplicates."""
    ids = {resolve_model(name, overrides={}, profile_prefix=profile_prefix).model_id for name in MODELS}
    for extra in extra_model_ids:
        ids.add(extra)
        if not parse_model_id(extra).is_profile:
            ids.add(f"{profile_prefix}.{extra}")
    return tuple(sorted(ids))


def profile_arn(partition: str, account_id: str, region: str, profile_id: str) -> str:
    return f"arn:{partition}:bedrock:{region}:{account_id}:inference-profile/{profile_id}"


def foundation_model_arns(partition: str, target: BedrockTarget, source_region: str) -> list[str]:
    """Where ``target`` may run: the geography's region pattern for a profile (plus the region-less
    ARN for ``global``), the source region for a plain foundation-model id."""
    fid = target.foundation_id
    if target.geography is None:
        return [f"arn:{partition}:bedrock:{source_region}::foundation-model/{fid}"]
    pattern = INFERENCE_PROFILE_REGION_PATTERNS[target.geography]
    arns = [f"arn:{partition}:bedrock:{pattern}::foundation-model/{fid}"]
    if target.geography == "global":
        arns.append(f"arn:{partition}:bedrock:::foundation-model/{fid}")
    return arns


def bedrock_statements(
    partition: str, account_id: str, source_region: str, model_ids: Sequence[str]
) -> list[PolicyStatement]:
    """The task role's Bedrock statements for ``model_ids`` (from :func:`routable_model_ids`):

    - ``InvokeInferenceProfiles``: invoke and count tokens on exactly these profiles, in the source
      region (``bedrockRegion``) -- this is what limits *which* models run;
    - ``InvokeModelsThroughProfiles``: their foundation models in the geography's destination
      regions, only when the call comes through an inference profile of this account and source
      region (condition ``bedrock:InferenceProfileArn``);
    - ``InvokeFoundationModels``: plain foundation-model ids (extras), in the source region;
    - ``CountTokensOnModels``: CountTokens on the profiles' foundation models in the source region.

    Compact on purpose: all inline policies of a role share 10,240 characters (without whitespace).
    """
    targets = [parse_model_id(m) for m in sorted(set(model_ids))]
    profiles = [t for t in targets if t.is_profile]
    direct = [t for t in targets if not t.is_profile]
    invoke_and_count = [*BEDROCK_INVOKE_ACTIONS, *BEDROCK_COUNT_TOKENS_ACTIONS]
    statements: list[PolicyStatement] = []
    if profiles:
        statements += [
            {
                "Sid": "InvokeInferenceProfiles",
                "Effect": "Allow",
                "Action": invoke_and_count,
                "Resource": sorted({profile_arn(partition, account_id, source_region, t.model_id) for t in profiles}),
            },
            {
                "Sid": "InvokeModelsThroughProfiles",
                "Effect": "Allow",
                "Action": list(BEDROCK_INVOKE_ACTIONS),
                "Resource": sorted({a for t in profiles for a in foundation_model_arns(partition, t, source_region)}),
                "Condition": {
                    "StringLike": {"bedrock:InferenceProfileArn": profile_arn(partition, account_id, source_region, "*")}
                },
            },
            {
                "Sid": "CountTokensOnModels",
                "Effect": "Allow",
                "Action": list(BEDROCK_COUNT_TOKENS_ACTIONS),
                "Resource": sorted(
                    {f"arn:{partition}:bedrock:{source_region}::foundation-model/{t.foundation_id}" for t in profiles}
                ),
            },
        ]
    if direct:
        statements.append(
            {
                "Sid": "InvokeFoundationModels",
                "Effect": "Allow",
                "Action": invoke_and_count,
                "Resource": sorted({a for t in direct for a in foundation_model_arns(partition, t, source_region)}),
            }
        )
    return statements
