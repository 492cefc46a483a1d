"""router: a drop-in OpenAI client that routes every chat completion by policy."""
