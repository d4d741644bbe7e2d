"""Ingress doors: other client APIs on the router (Anthropic Messages, OpenAI Responses).

A door translates its request into the internal chat-completions shape, so the request takes
the same path as ``/v1/chat/completions`` (auth, validation, routing, limits, budgets,
fallbacks, usage), and translates the answer (or the stream) back. Where the upstream speaks
the client's API natively (an ``anthropic`` provider behind ``/v1/messages``, an ``openai`` one
behind ``/v1/responses``) the client's body is sent as it came (model resolved) and the answer
passed through: no double translation. What the chat form cannot say keeps a request to such
providers (:meth:`.door.Door.narrow`).
The transforms are pure (golden-tested without I/O); :mod:`.door` holds the glue.
"""
