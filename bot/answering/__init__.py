"""Turning retrieved clauses into an answer: extractive, or grounded through an LLM and checked;
and checking a draft post against the policy."""
