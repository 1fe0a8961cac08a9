"""Exit codes shared by every command.

====  ===========================================================
0     done (the job finished ``Done``; or the request succeeded)
1     the job failed, or the server refused the request
2     usage: bad arguments, an ambiguous job id prefix, or params the server rejected (400/422)
3     the job was canceled
4     the server could not be reached, or the connection was lost for good
130   stopped following on Ctrl-C (or the output's reader went away); the job goes on
====  ===========================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELED = 3
EXIT_CONNECTION_LOST = 4
EXIT_INTERRUPTED = 130
