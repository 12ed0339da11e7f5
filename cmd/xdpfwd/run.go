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
	defer ignoreSIGHUP(ctx, log)()
	return serve(ctx, cfg, log)
}

// ignoreSIGHUP catches SIGHUP, whose default action would kill the daemon
// without detaching anything, and logs that it is ignored, until ctx is
// done or the returned function is called (which waits for it).
func ignoreSIGHUP(ctx context.Context, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-hup:
				log.Warn("reload is not implemented yet; ignoring SIGHUP")
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
		// Not back to the default action: a late SIGHUP while the
		// process exits is dropped, not fatal.
		signal.Ignore(syscall.SIGHUP)
	}
}

// serve runs the dataplane described by cfg until ctx is done, with its
// control socket, and takes everything down before it returns.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) (err error) {
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
	return d.Wait(ctx)
}
