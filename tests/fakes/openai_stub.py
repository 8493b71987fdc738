"""The OpenAI-compatible stub on 127.0.0.1 that tests script (it lives in bench/, which uses
it for the groundedness benchmark and never imports the tests)."""

from bench.openai_stub import HANG as HANG
from bench.openai_stub import OpenAIStub as OpenAIStub
from bench.openai_stub import Recorded as Recorded
from bench.openai_stub import Reply as Reply
from bench.openai_stub import Script as Script
from bench.openai_stub import answer as answer
from bench.openai_stub import chunk as chunk
from bench.openai_stub import completion as completion
from bench.openai_stub import error as error
from bench.openai_stub import streamed as streamed
from bench.openai_stub import streamed_answer as streamed_answer
