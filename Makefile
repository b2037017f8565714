# Build and install spartan. "make install DESTDIR=/tmp/stage PREFIX=/usr"
# stages a package tree; see scripts/install.sh for every variable.
GO ?= go
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc

.PHONY: build install test

build:
	$(GO) build -trimpath -o bin/spartan ./cmd/spartan
	$(GO) build -trimpath -o bin/watchdog ./cmd/watchdog

install: build
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" GO="$(GO)" \
		./scripts/install.sh bin

test:
	./scripts/test.sh
