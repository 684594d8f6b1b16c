"""Demo data for the run command: a price for the default model (so calls are
metered, never free by accident) and the moderation settings row."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from usage.models import LIFETIME_START, ModerationSettings, RateCard

# Published list prices (USD per 1M tokens) for the small default model.
DEMO_PRICES = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
}


def seed() -> list[str]:
    lines = []
    model = settings.OPENAI_DEFAULT_MODEL
    prices = DEMO_PRICES.get(model, DEMO_PRICES["gpt-4o-mini"])
    _, created = RateCard.objects.get_or_create(
        model=model,
        effective_from=LIFETIME_START,
        defaults={
            "input_per_million": prices[0],
            "cached_input_per_million": prices[1],
            "output_per_million": prices[2],
        },
    )
    if created:
        lines.append(
            f"  Rate card: {model} at ${prices[0]}/${prices[1]}/${prices[2]} per 1M tokens"
        )
    ModerationSettings.current()
    return lines
