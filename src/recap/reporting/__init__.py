"""Report rendering: matplotlib figures (:mod:`.plots`) and markdown / HTML (:mod:`.markdown`)."""
