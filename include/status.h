/* status.h — the vassal master's status socket, the server side of status_proto.h:
 * one request line per connection, answered and closed. Only root and the master's
 * own uid are answered. A slow client never blocks the master: each connection has
 * its own watchers and a deadline. */
#ifndef EMPEROR_STATUS_H
#define EMPEROR_STATUS_H

struct master;

int status_open(struct master *m);
void status_close(struct master *m);

#endif
