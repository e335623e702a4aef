"""What every benchmark shares: its own fleet (``fleet``), the fleet lock while measuring (``lock``),
CPU per component (``cpu``), resident memory per service (``memory``), the machine (``machine``),
percentiles (``stats``) and where results go (``results``)."""
