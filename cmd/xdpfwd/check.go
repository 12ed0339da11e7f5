package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/xdpfwd/xdpfwd/internal/config"
	"github.com/xdpfwd/xdpfwd/internal/daemon"
)

// checkCmd is `xdpfwd check --config FILE`: the configuration and its
// ruleset loaded by the code `run` loads them with (config.Load, then
// daemon.Check, which shares daemon.New's building), so a file check
// passes is one run starts with, as far as the interfaces allow, and a
// file it refuses fails with the message run would print. It touches no
// interface, XDP program or socket; nft compiles the ruleset in a
// throwaway network namespace, as for run.
func checkCmd(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML configuration file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *cfgPath == "" {
		return errors.New("--config FILE is required")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	// Warnings only (a port in no bridge, workers without real-time
	// priority): what run would log at start-up about the file.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sum, err := daemon.Check(cfg, log)
	if err != nil {
		return err
	}
	fmt.Printf("%s: OK: %s\n", cfg.File, sum)
	return nil
}
