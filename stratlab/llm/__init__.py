"""The LLM layer: providers (openai-compatible, offline), prompt rendering, parsing, pricing.

Import the submodules you need; this package module stays empty so that importing
``stratlab.llm.prompts`` (for example from the optimizer) never pulls in an LLM SDK.
"""
