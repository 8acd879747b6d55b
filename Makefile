# Install sockhost in the FHS layout operators expect:
#   make install DESTDIR=/tmp/root            (release build)
#   make install DESTDIR=/tmp/root PROFILE=debug
# Existing files under /etc are never overwritten.

PREFIX     ?= /usr
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
PROFILE    ?= release
DESTDIR    ?=

OUT      ?= $(or $(CARGO_TARGET_DIR),target)/$(PROFILE)
PLUGINS  := libsockhost_echo.so libsockhost_daytime.so libsockhost_probe.so
PLUGDIR  := $(PREFIX)/lib/sockhost/plugins
CONFDIR  := $(SYSCONFDIR)/sockhost

.PHONY: all build install uninstall

all: build

build:
ifeq ($(PROFILE),release)
	cargo build --release
else
	cargo build --workspace
endif

install: $(if $(NOBUILD),,build)
	install -D -m 0755 $(OUT)/sockhostd $(DESTDIR)$(PREFIX)/sbin/sockhostd
	install -D -m 0755 $(OUT)/sockhostctl $(DESTDIR)$(PREFIX)/bin/sockhostctl
	install -d -m 0755 $(DESTDIR)$(PLUGDIR)
	for p in $(PLUGINS); do install -m 0644 $(OUT)/$$p $(DESTDIR)$(PLUGDIR)/$$p; done
	install -D -m 0644 handler-sdk/include/sockhost.h $(DESTDIR)$(PREFIX)/include/sockhost.h
	install -d -m 0755 $(DESTDIR)$(CONFDIR)/conf.d
	test -e $(DESTDIR)$(CONFDIR)/sockhost.toml || \
		install -m 0644 packaging/sockhost.toml $(DESTDIR)$(CONFDIR)/sockhost.toml
	install -D -m 0644 systemd/sockhostd.service $(DESTDIR)$(UNITDIR)/sockhostd.service
	install -D -m 0644 systemd/sockhostd.socket $(DESTDIR)$(UNITDIR)/sockhostd.socket
	install -D -m 0644 docs/man/sockhostd.8 $(DESTDIR)$(PREFIX)/share/man/man8/sockhostd.8
	install -D -m 0644 docs/man/sockhost.toml.5 $(DESTDIR)$(PREFIX)/share/man/man5/sockhost.toml.5
	install -D -m 0644 docs/man/sockhostctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/sockhostctl.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/sockhostd $(DESTDIR)$(PREFIX)/bin/sockhostctl
	for p in $(PLUGINS); do rm -f $(DESTDIR)$(PLUGDIR)/$$p; done
	rm -f $(DESTDIR)$(PREFIX)/include/sockhost.h
	rm -f $(DESTDIR)$(UNITDIR)/sockhostd.service $(DESTDIR)$(UNITDIR)/sockhostd.socket
	rm -f $(DESTDIR)$(PREFIX)/share/man/man8/sockhostd.8 $(DESTDIR)$(PREFIX)/share/man/man5/sockhost.toml.5
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/sockhostctl.1
