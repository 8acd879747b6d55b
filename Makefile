# Install sockhost in the FHS layout operators expect:
#   make install DESTDIR=/tmp/root            (release build)
#   make install DESTDIR=/tmp/root PROFILE=debug
# Existing files under /etc are never overwritten.
#
# Build the Debian package target/debian/sockhost_VERSION-REV_ARCH.deb
# (CARGO_TARGET_DIR/debian when that is set) from such a tree:
#   make deb                                  (release build)
#   make deb PROFILE=debug NOBUILD=1 VERSION=0.1.1 DEBDIR=/tmp/debs
# Needs dpkg-deb, dpkg-shlibdeps (dpkg-dev), strip and gzip; see
# packaging/debian/build-deb.

PREFIX     ?= /usr
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
PROFILE    ?= release
DESTDIR    ?=
# When set, the installed config runs the daemon as this user and group
# (the Debian package sets it to the sockhost user it creates).
DAEMON_USER ?=

TARGET   := $(or $(CARGO_TARGET_DIR),target)
OUT      ?= $(TARGET)/$(PROFILE)
PLUGINS  := libsockhost_echo.so libsockhost_daytime.so libsockhost_probe.so libsockhost_http_hello.so
# Installed when the workspace built them.
OPTIONAL_PLUGINS := libsockhost_python.so
PLUGDIR  := $(PREFIX)/lib/sockhost/plugins
CONFDIR  := $(SYSCONFDIR)/sockhost

# The package version: the workspace's, plus a Debian revision.
VERSION      ?= $(shell sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
DEB_REVISION ?= 1
DEBDIR       ?= $(TARGET)/debian
DEBSTAGE     ?= $(DEBDIR)/stage-$(VERSION)-$(DEB_REVISION)
# dpkg-deb's -Z: xz as Debian ships; the tests take gzip for speed.
DEB_COMPRESS ?= xz

.PHONY: all build install uninstall deb

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
	for p in $(OPTIONAL_PLUGINS); do \
		if [ -e $(OUT)/$$p ]; then install -m 0644 $(OUT)/$$p $(DESTDIR)$(PLUGDIR)/$$p; fi; done
	install -D -m 0644 handler-sdk/include/sockhost.h $(DESTDIR)$(PREFIX)/include/sockhost.h
	install -d -m 0755 $(DESTDIR)$(CONFDIR)/conf.d
	test -e $(DESTDIR)$(CONFDIR)/sockhost.toml || { \
		sed -e '$(if $(DAEMON_USER),s/^#\(user\|group\) = .*/\1 = "$(DAEMON_USER)"/)' \
			packaging/sockhost.toml > $(DESTDIR)$(CONFDIR)/sockhost.toml && \
		chmod 0644 $(DESTDIR)$(CONFDIR)/sockhost.toml; }
	install -D -m 0644 packaging/sysusers.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/sockhost.conf
	install -D -m 0644 systemd/sockhostd.service $(DESTDIR)$(UNITDIR)/sockhostd.service
	install -D -m 0644 systemd/sockhostd.socket $(DESTDIR)$(UNITDIR)/sockhostd.socket
	install -D -m 0644 docs/man/sockhostd.8 $(DESTDIR)$(PREFIX)/share/man/man8/sockhostd.8
	install -D -m 0644 docs/man/sockhost.toml.5 $(DESTDIR)$(PREFIX)/share/man/man5/sockhost.toml.5
	install -D -m 0644 docs/man/sockhostctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/sockhostctl.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/sockhostd $(DESTDIR)$(PREFIX)/bin/sockhostctl
	for p in $(PLUGINS) $(OPTIONAL_PLUGINS); do rm -f $(DESTDIR)$(PLUGDIR)/$$p; done
	rm -f $(DESTDIR)$(PREFIX)/include/sockhost.h
	rm -f $(DESTDIR)$(PREFIX)/lib/sysusers.d/sockhost.conf
	rm -f $(DESTDIR)$(UNITDIR)/sockhostd.service $(DESTDIR)$(UNITDIR)/sockhostd.socket
	rm -f $(DESTDIR)$(PREFIX)/share/man/man8/sockhostd.8 $(DESTDIR)$(PREFIX)/share/man/man5/sockhost.toml.5
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/sockhostctl.1

# A fresh staging tree each time, so nothing from an earlier build leaks in.
deb: $(if $(NOBUILD),,build)
	rm -rf $(DEBSTAGE)
	$(MAKE) --no-print-directory install NOBUILD=1 OUT=$(OUT) DESTDIR=$(abspath $(DEBSTAGE)) \
		PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system DAEMON_USER=sockhost \
		OPTIONAL_PLUGINS=
	DEB_COMPRESS=$(DEB_COMPRESS) packaging/debian/build-deb $(DEBSTAGE) $(DEBDIR) $(VERSION)-$(DEB_REVISION)
	rm -rf $(DEBSTAGE)
