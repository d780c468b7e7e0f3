"""What may be posted where: a server's policy for results that may be sexual (NSFW), and the checks behind it.

Discord allows sexual content only in age-restricted channels. Each server picks a policy per kind of channel
(`/settings`): in ordinary channels (and DMs) `block` (the default) or `spoiler`; in age-restricted channels
`allow` (the default), `block` or `spoiler`. Where the policy is not `allow`:
- a prompt holding one of `EXPLICIT_TERMS` is refused before anything is sent (on top of the server's blocked
  words, matched the same way, after Unicode folding);
- with v2, each result is labelled by Prodia's NSFW classifier job (`inference.vit.img2label.v1`: neutral, low,
  medium, high; prodia-api.md 3a) and one labelled `NSFW_THRESHOLD` or above is withheld (`block`) or posted
  as a spoiler (`spoiler`), never plainly; a result the classifier could not label is treated as flagged.
- v1 has no classifier: the prompt check is all there is (the README says so).
"""

from __future__ import annotations

import json

from .errors import BadResponse, ImagineError

ORDINARY_POLICIES = ("block", "spoiler")  # ordinary channels and DMs
AGE_RESTRICTED_POLICIES = ("allow", "block", "spoiler")
LABELS = ("neutral", "low", "medium", "high")  # the classifier's, least to most explicit
DEFAULT_THRESHOLD = "medium"
CLASSIFIER_JOB_TYPE = "inference.vit.img2label.v1"

# Refused in prompts where the policy is not `allow`: unambiguous terms only (words people use for ordinary
# pictures, such as "body" or "kiss", are not here), English and Russian, matched as whole words after folding.
EXPLICIT_TERMS = (
    "nsfw", "nude", "nudes", "naked", "nudity", "porn", "porno", "pornographic", "hentai", "explicit sex",
    "sex scene", "xxx", "topless", "genitals", "erotic", "lewd", "stripper", "fetish",
    "голая", "голый", "голые", "обнажённая", "обнаженная", "порно", "эротика", "эротический", "хентай", "секс",
)  # fmt: skip


class ExplicitPrompt(ImagineError):
    """A prompt holds one of EXPLICIT_TERMS in a channel whose policy is not `allow`."""

    key = "limit.explicit"


class Withheld(ImagineError):
    """A result the content check flagged, in a channel whose policy is `block`: it is not posted."""

    key = "content.withheld"


class Unchecked(Withheld):
    """A result the content check could not label (its job failed), where only checked results are shown."""

    key = "content.unchecked"


def policy_for(ordinary: str, age_restricted_policy: str, *, age_restricted: bool) -> str:
    """The policy of one channel: its server's for age-restricted channels there, else the ordinary one."""
    return age_restricted_policy if age_restricted else ordinary


def flagged(label: str, threshold: str = DEFAULT_THRESHOLD) -> bool:
    return LABELS.index(label) >= LABELS.index(threshold)


def label_of(output: bytes) -> str:
    """The label in the classifier's output. Its format is not documented: a JSON string, an object with a
    `label`, or a list of {label, score} (the highest score wins) are read; BadResponse otherwise."""
    try:
        document = json.loads(output)
    except ValueError:
        document = output.decode("utf-8", "replace").strip()
    if isinstance(document, dict):
        document = document.get("label", document.get("labels"))
    if isinstance(document, list) and document and all(isinstance(item, dict) for item in document):
        document = max(document, key=lambda item: item.get("score", 0) if isinstance(item.get("score"), int | float)
                       else 0).get("label")  # fmt: skip
    if isinstance(document, str) and document.strip().lower() in LABELS:
        return document.strip().lower()
    raise BadResponse("the classifier's answer holds no known label")
