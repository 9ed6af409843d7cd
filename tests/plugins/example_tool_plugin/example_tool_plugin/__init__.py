"""An example third-party tool: ``<wordcount>text</wordcount>`` → the number of words."""

from latent_env.tools import Tool, ToolOutput


class WordCountTool(Tool):
    name = "wordcount"
    tag = "wordcount"
    description = "Counts the words in the block."

    def run(self, text: str) -> ToolOutput:
        words = text.split()
        return ToolOutput("ok", str(len(words)))
