"""Testing-lab templates (seed 002): 10 prompts in 9 categories, with suggested models
drawn from the current catalog (capable models for hard tasks, cheap ones for easy tasks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    name: str
    category: str
    description: str
    prompt: str
    heavy: bool = False
    max_tokens: int = 512
    temperature: float = 0.7


TEMPLATES: tuple[Template, ...] = (
    Template(
        "explain-quantum",
        "Explain Quantum Physics",
        "explanation",
        "Explaining a complex scientific concept simply",
        "Explain quantum physics in simple terms a curious teenager would understand.",
    ),
    Template(
        "write-poem",
        "Write a Poem",
        "creative",
        "Creative writing with form and imagery",
        "Write a short poem about a city waking up in the rain.",
        temperature=0.9,
    ),
    Template(
        "brainstorm",
        "Brainstorming",
        "creative",
        "Generating many distinct ideas",
        "Brainstorm ten names and one-line pitches for a bicycle repair startup.",
        temperature=1.0,
    ),
    Template(
        "code-function",
        "Code a Function",
        "coding",
        "Writing correct, documented code",
        "Write a Python function that merges overlapping intervals, with type hints, "
        "a docstring and three tests.",
        heavy=True,
        temperature=0.2,
    ),
    Template(
        "sentiment",
        "Sentiment Analysis",
        "analysis",
        "Classifying tone with reasons",
        "Classify the sentiment of: 'The battery lasts forever, but the screen scratches "
        "if you look at it.' Answer positive, negative or mixed, then explain.",
        temperature=0.0,
    ),
    Template(
        "logic-puzzle",
        "Logic Puzzle",
        "reasoning",
        "Multi-step deductive reasoning",
        "Three boxes are labelled apples, oranges and mixed; every label is wrong. You may "
        "take one fruit from one box. How do you relabel all boxes? Explain step by step.",
        heavy=True,
        temperature=0.0,
    ),
    Template(
        "summarize",
        "Text Summarization",
        "summarization",
        "Faithful, short summaries",
        "Summarise in three bullet points: an LLM gateway routes requests to many model "
        "providers, fails over when one is unhealthy and meters tokens for billing.",
        temperature=0.3,
    ),
    Template(
        "translate",
        "Language Translation",
        "translation",
        "Translation preserving tone",
        "Translate into French and German: 'Thanks for your patience, your order ships "
        "tomorrow morning.'",
        temperature=0.2,
    ),
    Template(
        "math-problem",
        "Math Problem",
        "mathematics",
        "Exact arithmetic and algebra",
        "A train leaves at 14:10 at 84 km/h; another leaves the same station at 14:40 at "
        "105 km/h on the same track. When does the second catch up? Show your work.",
        heavy=True,
        temperature=0.0,
    ),
    Template(
        "role-play",
        "Role-Playing",
        "conversation",
        "Staying in character in dialogue",
        "You are a friendly museum guide. Greet me and ask what kind of art I like.",
        temperature=0.8,
    ),
)


SUGGESTIONS = """
WITH chat AS (
    SELECT name, max(input_price_per_mtok + output_price_per_mtok) AS price
    FROM models WHERE enabled AND NOT deprecated AND 'chat' = ANY(purposes) GROUP BY name
)
(SELECT true AS capable, name FROM chat ORDER BY price DESC, name LIMIT $1)
UNION ALL
(SELECT false, name FROM chat ORDER BY price, name DESC LIMIT $1)
"""
"""The priciest chat models (by name, the dearest deployment) and the cheapest, the
cheapest first: the first and the last ``$1`` of one ordering, without fetching the
thousands of names between them."""


async def templates(pool: asyncpg.Pool, per_template: int = 3) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(SUGGESTIONS, per_template)
    capable = [r["name"] for r in rows if r["capable"]]
    cheap = [r["name"] for r in rows if not r["capable"]]
    return [
        {
            "id": t.id,
            "name": t.name,
            "category": t.category,
            "description": t.description,
            "prompt": t.prompt,
            "messages": [{"role": "user", "content": t.prompt}],
            "parameters": {"max_tokens": t.max_tokens, "temperature": t.temperature},
            "suggested_models": capable if t.heavy else cheap,
        }
        for t in TEMPLATES
    ]
