#include <config.h>

#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/watch.h"

struct mq_watch {
    int fd;
};

struct mq_watch *
mq_watch_new(const char *dir, GError **err)
{
    struct mq_watch *w;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

    if (fd < 0 || inotify_add_watch(fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "inotify on %s: %s", dir, g_strerror(saved));
        return NULL;
    }
    w = g_new0(struct mq_watch, 1);
    w->fd = fd;
    return w;
}

void
mq_watch_free(struct mq_watch **watch)
{
    if (*watch == NULL)
        return;
    close((*watch)->fd);
    g_free(*watch);
    *watch = NULL;
}

int
mq_watch_fd(const struct mq_watch *watch)
{
    return watch->fd;
}

bool
mq_watch_read(struct mq_watch *watch, GPtrArray *ids)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool overflow = false;

    for (;;) {
        ssize_t n = read(watch->fd, buf, sizeof(buf));
        if (n <= 0)
            break;      /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->mask & IN_Q_OVERFLOW)
                overflow = true;
            else if (ev->len > 0 && ev->name[0] == 'q' && ev->name[1] == 'f' &&
                     mq_fs_id_ok(ev->name + 2))
                g_ptr_array_add(ids, g_strdup(ev->name + 2));
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
    return overflow;
}
