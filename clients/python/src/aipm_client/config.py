"""A feature's configuration as the console answers ``GET /api/v1/config/<feature>``, and
the helpers that read it: the live prompt, an experiment's variant for a subject, and the
fields a usage event should carry to say what the application was told."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aipm_client.assignment import BUCKETS, bucket_of, variant_index

# Where an answer came from: the console just now, the in-memory cache while fresh, the
# cache past its max-age because the console erred (stale-if-error), the fallback bundle.
SOURCES = ("console", "cache", "stale", "fallback")


@dataclass(frozen=True)
class Variant:
    """The variant a subject gets in a running experiment."""

    experiment_id: str
    id: str
    name: str | None
    weight: Any
    model: dict[str, Any] | None = None  # {"name", "version", "provider"} when it sets one
    prompt: dict[str, Any] | None = None  # {"name", "version"} when it sets one
    params: dict[str, Any] | None = None
    is_control: bool = False


@dataclass(frozen=True)
class FeatureConfig:
    """One feature's answer (``data`` is the envelope's ``data``, unchanged) and where the
    client got it (``source``: one of ``SOURCES``)."""

    data: dict[str, Any]
    source: str = "console"
    etag: str | None = field(default=None, compare=False)

    @property
    def feature(self) -> str:
        return str(self.data["feature"]["name"])

    @property
    def status(self) -> str:
        """``active``, ``inactive`` or ``maintenance``: the application decides what an
        inactive feature does."""
        return str(self.data["feature"]["status"])

    @property
    def environment(self) -> str:
        return str(self.data["environment"])

    @property
    def revision(self) -> int:
        return int(self.data["revision"])

    @property
    def model(self) -> dict[str, Any] | None:
        """The assigned model (name, version, provider, config, pricing), or None: the
        feature runs on the application's default."""
        return self.data.get("model")

    @property
    def prompts(self) -> list[dict[str, Any]]:
        return list(self.data.get("prompts") or [])

    @property
    def experiments(self) -> list[dict[str, Any]]:
        return list(self.data.get("experiments") or [])

    @property
    def budget(self) -> dict[str, Any] | None:
        """``{"state", "action" (allow|degrade|deny), "degrade_to", "resets_at"}`` or None."""
        return self.data.get("budget")

    def prompt(self, name: str) -> dict[str, Any] | None:
        """The version of prompt ``name`` live in the key's environment, or None."""
        return next((p for p in self.prompts if p["name"] == name), None)

    def experiment(self, experiment_id: str) -> dict[str, Any] | None:
        """The running experiment of that id, or None (not running, or not this feature's)."""
        return next((e for e in self.experiments if str(e["id"]) == str(experiment_id)), None)

    def variant(self, experiment_id: str, subject: str) -> Variant | None:
        """The variant ``subject`` gets, computed here exactly as the console's
        ``/experiments/<id>/assignment`` does; None when the experiment is not running
        (then serve the configuration's model and prompt)."""
        experiment = self.experiment(experiment_id)
        subject = subject.strip() if isinstance(subject, str) else subject
        if experiment is None or not subject:
            return None
        variants = experiment["variants"]
        bucket = bucket_of(str(experiment["id"]), subject, int(experiment.get("buckets", BUCKETS)))
        chosen = variants[variant_index([v["weight"] for v in variants], bucket)]
        return Variant(
            experiment_id=str(experiment["id"]),
            id=str(chosen["id"]),
            name=chosen.get("name"),
            weight=chosen["weight"],
            model=chosen.get("model"),
            prompt=chosen.get("prompt"),
            params=chosen.get("params"),
            is_control=chosen["id"] == experiment.get("control"),
        )

    def usage_fields(
        self, variant: Variant | None = None, prompt: str | None = None
    ) -> dict[str, Any]:
        """What a usage event should say it ran on: the model and the prompt version this
        answer named (a variant's model or prompt instead, when given), and in
        ``metadata`` the configuration revision and the experiment variant. ``prompt``
        picks the prompt by name when the feature has several live ones."""
        fields: dict[str, Any] = {"feature": self.feature}
        model = (variant.model if variant else None) or self.model
        if model:
            fields["model"] = model["name"]
            provider = model.get("provider")
            name = provider.get("name") if isinstance(provider, dict) else provider
            if name:
                fields["provider"] = name
            if model.get("version"):
                fields["model_version"] = model["version"]
        chosen = (variant.prompt if variant else None) or self._prompt_for(prompt)
        if chosen:
            fields["prompt"] = {"name": chosen["name"], "version": chosen["version"]}
        metadata: dict[str, Any] = {"config_revision": self.revision}
        if variant is not None:
            metadata["experiment_id"] = variant.experiment_id
            metadata["variant_id"] = variant.id
        fields["metadata"] = metadata
        return fields

    def _prompt_for(self, name: str | None) -> dict[str, Any] | None:
        if name is not None:
            return self.prompt(name)
        return self.prompts[0] if len(self.prompts) == 1 else None
