"""okdbot: answers questions about OKD from Markdown notes, quoting them with links to the exact lines."""

__version__ = "0.1.0"
