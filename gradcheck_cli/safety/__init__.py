"""Safety: user code in a child process, resource budgets for inputs, and defused text."""
