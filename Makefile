# Install sockhost in the FHS layout operators expect:
#   make install DESTDIR=/tmp/root            (release build)
#   make install DESTDIR=/tmp/root PROFILE=debug
# Existing files under /etc are never overwritten.
#
# Build the Debian packages target/debian/sockhost_VERSION-REV_ARCH.deb
# (from such a tree) and sockhost-python_VERSION-REV_ARCH.deb (the Python
# plugin, built against Debian's python3 in target/deb-python), in
# CARGO_TARGET_DIR/debian when that is set:
#   make deb                                  (release build, both packages)
#   make deb PROFILE=debug NOBUILD=1 VERSION=0.1.1 DEBDIR=/tmp/debs
#   make deb-sockhost / make deb-python       (one of them)
# Needs dpkg-deb, dpkg-shlibdeps (dpkg-dev), strip and gzip, and for
# sockhost-python Debian's python3-dev; see packaging/debian/build-deb.

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
PLUGINS  := libsockhost_echo.so libsockhost_daytime.so libsockhost_chargen.so libsockhost_discard.so libsockhost_time.so libsockhost_probe.so libsockhost_http_hello.so
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
# sockhost-python links the libpython of this interpreter, which must be
# Debian's (dpkg-shlibdeps maps it to the libpython3.X package). It is built
# in a target folder of its own, so the workspace's build (linked with the
# python3 on PATH, pyenv's on our machines) never rebuilds pyo3 for it.
DEB_PYTHON   ?= /usr/bin/python3
DEB_PYTARGET ?= $(TARGET)/deb-python
DEB_PYSTAGE  ?= $(DEBDIR)/stage-python-$(VERSION)-$(DEB_REVISION)

.PHONY: all build install uninstall deb deb-sockhost deb-python deb-python-check

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

# Both packages. Without Debian's python3-dev this fails before building
# anything, naming the package to install: a `make deb` that quietly left
# sockhost-python out would ship a release without it. `make deb-sockhost`
# builds the daemon's package alone.
deb: deb-python-check deb-sockhost deb-python

# A fresh staging tree each time, so nothing from an earlier build leaks in.
deb-sockhost: $(if $(NOBUILD),,build)
	rm -rf $(DEBSTAGE)
	$(MAKE) --no-print-directory install NOBUILD=1 OUT=$(OUT) DESTDIR=$(abspath $(DEBSTAGE)) \
		PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system DAEMON_USER=sockhost \
		OPTIONAL_PLUGINS=
	DEB_COMPRESS=$(DEB_COMPRESS) packaging/debian/build-deb $(DEBSTAGE) $(DEBDIR) $(VERSION)-$(DEB_REVISION)
	rm -rf $(DEBSTAGE)

deb-python-check:
	@$(DEB_PYTHON) -c 'import os, sys, sysconfig as c; lib = os.path.join(c.get_config_var("LIBDIR"), c.get_config_var("LDLIBRARY")); sys.exit(not (c.get_config_var("Py_ENABLE_SHARED") and os.path.exists(lib)))' 2>/dev/null || { \
		echo "make: the sockhost-python package needs Debian's python3 with its shared libpython to link ($(DEB_PYTHON), libpython3.X.so): apt-get install python3-dev (or build only the sockhost package: make deb-sockhost)" >&2; \
		exit 1; }

# The plugin alone, built by cargo in its own target folder against
# DEB_PYTHON whatever NOBUILD says (the workspace's build links another
# libpython; cargo does nothing when it is up to date).
deb-python: deb-python-check
	env -u PYO3_CONFIG_FILE PYO3_PYTHON=$(DEB_PYTHON) CARGO_TARGET_DIR=$(abspath $(DEB_PYTARGET)) \
		cargo build -p sockhost-python $(if $(filter release,$(PROFILE)),--release)
	rm -rf $(DEB_PYSTAGE)
	install -D -m 0644 $(DEB_PYTARGET)/$(PROFILE)/libsockhost_python.so \
		$(DEB_PYSTAGE)/usr/lib/sockhost/plugins/libsockhost_python.so
	DEB_COMPRESS=$(DEB_COMPRESS) packaging/debian/build-deb $(DEB_PYSTAGE) $(DEBDIR) $(VERSION)-$(DEB_REVISION) sockhost-python
	rm -rf $(DEB_PYSTAGE)
