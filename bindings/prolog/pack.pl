name(usock).
version('0.2.0').
title('A safe private place for a Unix domain socket').
keywords([socket, unix, security, mqi]).
author('The usock developers', '').
