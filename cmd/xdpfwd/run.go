package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/daemon"
	"github.com/xdpfwd/xdpfwd/internal/sdnotify"
)

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML configuration file (required)")
	ctl := fs.String("control", "", "control socket path (default: options.control, else "+config.DefaultControl+")")
	var lf logFlags
	lf.add(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return errors.New("--config FILE is required")
	}
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *ctl != "" {
		cfg.Options.Control = *ctl
	}
	// A daemon whose stderr reader went away (a closed terminal, a log
	// pipe that died) keeps forwarding: its log writes fail with EPIPE
	// instead of killing it with SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() {
		// Not back to the default action (exit): a late SIGHUP while
		// the process exits is dropped, not fatal.
		signal.Ignore(syscall.SIGHUP)
	}()
	return serve(ctx, cfg, log, hup)
}

// serve runs the dataplane described by cfg until ctx is done, with its
// control socket, and takes everything down before it returns. Each
// signal on hup reloads the ruleset (Daemon.Reload); a failed reload is
// logged and changes nothing.
//
// Under systemd (Type=notify, $NOTIFY_SOCKET) it says READY=1 once every
// port forwards (New returned: programs attached, sockets in their
// XSKMAPs, workers running) and the control socket answers; RELOADING=1
// and READY=1 around each SIGHUP reload; STOPPING=1 when it begins to
// detach; STATUS= lines with a summary.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, hup <-chan os.Signal) (err error) {
	// The control socket first: a second daemon stops here, before it
	// touches any port.
	srv, err := control.Listen(cfg.Options.Control, nil)
	if err != nil {
		return err
	}
	srv.SetLogger(log)
	d, err := daemon.New(cfg, log, version())
	if err != nil {
		srv.Close()
		return err
	}
	defer func() {
		log.Info("stopping: detaching from every port")
		if cerr := d.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	srv.SetHandlers(d.Handlers())
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Serve(sctx); close(done) }()
	defer func() { cancel(); <-done }()
	log.Info("control socket", "path", cfg.Options.Control)
	if cfg.Options.Metrics != "" {
		mdone, err := d.ServeMetrics(sctx, cfg.Options.Metrics)
		if err != nil {
			return cfg.ErrorAt(cfg.Options.MetricsPos, "options.metrics", "%v", err)
		}
		defer func() { cancel(); <-mdone }()
	}
	hupDone := make(chan struct{})
	defer func() { cancel(); <-hupDone }()
	go func() {
		defer close(hupDone)
		for {
			select {
			case <-hup:
				notify(log, sdnotify.Reloading, sdnotify.MonotonicUsec(), sdnotify.Status("reloading the ruleset"))
				if n, err := d.Reload(); err != nil {
					log.Error("SIGHUP: reload failed; the running ruleset stays", "err", err)
					notify(log, sdnotify.Ready, sdnotify.Status(fmt.Sprintf("reload failed, the running ruleset stays (%v); %s", err, status(d))))
				} else {
					log.Info("SIGHUP: reloaded", "rules", n)
					notify(log, sdnotify.Ready, sdnotify.Status("reloaded; "+status(d)))
				}
			case <-sctx.Done():
				return
			}
		}
	}()
	notify(log, sdnotify.Ready, sdnotify.Status(status(d)))
	if iv := sdnotify.WatchdogInterval(); iv > 0 {
		wdDone := make(chan struct{})
		defer func() { cancel(); <-wdDone }()
		go func() {
			defer close(wdDone)
			watchdog(sctx, d, log, iv)
		}()
	}
	err = d.Wait(ctx)
	notify(log, sdnotify.Stopping, sdnotify.Status("stopping: detaching from every port"))
	return err
}

// notify sends the assignments to systemd, if it listens; a failure is
// logged once (the daemon forwards on regardless).
func notify(log *slog.Logger, assignments ...string) {
	if _, err := sdnotify.Notify(assignments...); err != nil && !notifyFailed.Swap(true) {
		log.Warn("systemd notification failed", "err", err)
	}
}

// notifyFailed is set once a notification failed and was logged.
var notifyFailed atomic.Bool

// status is the daemon's STATUS= line: what it runs and its ports' states,
// e.g. "forwarding: 3 ports, 1 bridge, no router, no ruleset; ports: 3 up".
func status(d *daemon.Daemon) string {
	s := "forwarding: " + d.Summary().String()
	st, err := d.Stats()
	if err != nil {
		return s
	}
	var order []string
	count := make(map[string]int)
	for _, p := range st.Ports {
		state, _, _ := strings.Cut(p.State, ":") // "failed: why" counts as failed
		if count[state] == 0 {
			order = append(order, state)
		}
		count[state]++
	}
	var parts []string
	for _, state := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[state], state))
	}
	return s + "; ports: " + strings.Join(parts, ", ")
}

// watchdog sends WATCHDOG=1 every interval while the daemon answers its
// stats (its state lock is not stuck), until ctx is done.
func watchdog(ctx context.Context, d *daemon.Daemon, log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := d.Stats(); err == nil {
				notify(log, sdnotify.Watchdog)
			}
		}
	}
}
