"""Routed batch jobs: ``client.files.create(purpose="batch")`` + ``client.batches.create(...)`` plan each
line at batch prices, submit per model through OpenAI's, Anthropic's and Gemini's batch APIs, and answer
with one openai ``Batch`` (docs/batch.md). Imported only when a client first touches files or batches."""
