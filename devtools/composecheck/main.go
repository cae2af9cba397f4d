// Command composecheck loads a Compose file the way `docker compose config` does, with compose-go (the
// Docker Compose loader): variables interpolated from one env file, the Compose Specification's schema
// validated, the model normalized and checked for consistency. It prints the resolved project as JSON on
// stdout and exits 0; on any error it prints one line naming the file and exits 1.
//
//	go run . -env-file ../../.env.example ../../docker-compose.yml
//
// Only the env file's variables are used (not the caller's environment), so a check gives the same
// answer on every machine. tests/test_compose_go.py builds and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

// projectName is the name `docker compose` would derive from the checkout's folder; fixed here so the
// output does not depend on where the repository is cloned.
const projectName = "seednews"

func load(ctx context.Context, composeFile, envFile string) ([]byte, error) {
	workdir := filepath.Dir(composeFile)
	opts, err := cli.NewProjectOptions(
		[]string{composeFile},
		cli.WithName(projectName),
		cli.WithWorkingDirectory(workdir),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return nil, err
	}
	project, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, err
	}
	return project.MarshalJSON()
}

func main() {
	envFile := flag.String("env-file", "", "the env file whose variables the Compose file interpolates (required)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: composecheck -env-file FILE COMPOSE_FILE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *envFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	composeFile := flag.Arg(0)
	out, err := load(context.Background(), composeFile, *envFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: %s (env file %s): %v\n", composeFile, *envFile, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
