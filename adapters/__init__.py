"""Platform adapters: each turns a platform's events into core calls and renders the answer."""
