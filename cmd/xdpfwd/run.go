package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/control"
	"github.com/xdpfwd/xdpfwd/internal/daemon"
)

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML configuration file (required)")
	ctl := fs.String("control", "", "control socket path (default: options.control, else "+config.DefaultControl+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return errors.New("--config FILE is required")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *ctl != "" {
		cfg.Options.Control = *ctl
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
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
				if n, err := d.Reload(); err != nil {
					log.Error("SIGHUP: reload failed; the running ruleset stays", "err", err)
				} else {
					log.Info("SIGHUP: reloaded", "rules", n)
				}
			case <-sctx.Done():
				return
			}
		}
	}()
	return d.Wait(ctx)
}
