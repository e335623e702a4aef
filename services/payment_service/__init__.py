"""payment-service: prices, the ledger, balances and their runway (DESIGN.md §1, §3, §5)."""
