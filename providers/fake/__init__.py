"""Fake providers: a real HTTP server on loopback speaking the OpenAI, Gemini and Anthropic protocols."""
