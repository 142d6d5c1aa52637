"""The advertiser release: contribution bounding, DP counts, partition selection, budget ledger, report."""
