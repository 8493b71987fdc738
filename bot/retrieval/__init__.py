"""Finding the clauses that answer a question: words and vocabulary, lexical and semantic
retrieval, the confidence that the policy covers the question."""
