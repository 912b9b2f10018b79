package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/writ-id/writ/internal/config"
)

const usersUsage = `writ users COMMAND -c FILE [--pool ID] [--endpoint URL] [--as IAM-USER] [args]

Commands (each a signed Cognito admin API call to the running idp):
  list [--filter 'email = "x"']        list users
  get USERNAME                          show a user
  create USERNAME [--email E] [--temp-password P]
  delete USERNAME | disable USERNAME | enable USERNAME
  set-password USERNAME PASSWORD [--temporary]
  add-to-group USERNAME GROUP | remove-from-group USERNAME GROUP
  sign-out USERNAME                     sign the user out everywhere

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN),
or --as NAME for an iam.users entry of FILE.`

func cmdUsers(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: "+usersUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: users needs a command", errUsage)
		}
		return nil
	}
	sub := args[0]
	fs := newFlags("users "+sub, usersUsage, stderr)
	file := fs.String("c", "", "configuration file (required)")
	pool := fs.String("pool", "", "user pool id (default: the file's first pool)")
	endpoint := fs.String("endpoint", "", "idp URL (default: serve.idp.public_url)")
	as := fs.String("as", "", "sign as this iam.users entry of FILE (default: AWS_* environment variables)")
	filter := fs.String("filter", "", "ListUsers filter, e.g. 'email = \"a@b.c\"'")
	email := fs.String("email", "", "email of a new user")
	temp := fs.String("temp-password", "", "temporary password of a new user (default: generated and mailed)")
	temporary := fs.Bool("temporary", false, "set-password: the user must change it at next sign-in")
	// Flags may come after the positional arguments, as the usage shows.
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: users needs -c FILE", errUsage)
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	if *pool == "" && len(cfg.UserPools) > 0 {
		*pool = cfg.UserPools[0].ID
	}
	if *endpoint == "" && cfg.Serve.IDP != nil {
		*endpoint = cfg.Serve.IDP.PublicURL
		if *endpoint == "" {
			*endpoint = "http://" + cfg.Serve.IDP.Listen
		}
	}
	creds := credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
	if *as != "" {
		found := false
		for _, u := range cfg.IAM.Users {
			if u.Name == *as {
				creds, found = credentials.NewStaticCredentialsProvider(u.AccessKeyID, u.SecretAccessKey.Reveal(), ""), true
			}
		}
		if !found {
			return fmt.Errorf("no iam.users entry %q in %s", *as, *file)
		}
	} else if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		return fmt.Errorf("%w: no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use --as IAM-USER", errUsage)
	}
	c := cip.New(cip.Options{Region: cfg.Region, BaseEndpoint: aws.String(*endpoint), Credentials: creds, RetryMaxAttempts: 1})
	ctx := context.Background()
	p := aws.String(*pool)
	need := func(n int) error {
		if len(rest) != n {
			return fmt.Errorf("%w: users %s takes %d argument(s)", errUsage, sub, n)
		}
		return nil
	}
	printUser := func(name string, status ciptypes.UserStatusType, enabled bool, attrs []ciptypes.AttributeType) {
		var as []string
		for _, a := range attrs {
			as = append(as, aws.ToString(a.Name)+"="+aws.ToString(a.Value))
		}
		fmt.Fprintf(stdout, "%s\t%s\tenabled=%v\t%s\n", name, status, enabled, strings.Join(as, " "))
	}
	switch sub {
	case "list":
		out, err := c.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: p, Filter: aws.String(*filter)})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, u := range out.Users {
			printUser(aws.ToString(u.Username), u.UserStatus, u.Enabled, u.Attributes)
		}
		return tw.Flush()
	case "get":
		if err := need(1); err != nil {
			return err
		}
		u, err := c.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: p, Username: aws.String(rest[0])})
		if err != nil {
			return err
		}
		printUser(aws.ToString(u.Username), u.UserStatus, u.Enabled, u.UserAttributes)
		return nil
	case "create":
		if err := need(1); err != nil {
			return err
		}
		in := &cip.AdminCreateUserInput{UserPoolId: p, Username: aws.String(rest[0])}
		if *email != "" {
			in.UserAttributes = []ciptypes.AttributeType{{Name: aws.String("email"), Value: aws.String(*email)}}
		}
		if *temp != "" {
			in.TemporaryPassword = aws.String(*temp)
		}
		out, err := c.AdminCreateUser(ctx, in)
		if err != nil {
			return err
		}
		printUser(aws.ToString(out.User.Username), out.User.UserStatus, out.User.Enabled, out.User.Attributes)
		return nil
	case "delete", "disable", "enable", "sign-out":
		if err := need(1); err != nil {
			return err
		}
		u := aws.String(rest[0])
		switch sub {
		case "delete":
			_, err = c.AdminDeleteUser(ctx, &cip.AdminDeleteUserInput{UserPoolId: p, Username: u})
		case "disable":
			_, err = c.AdminDisableUser(ctx, &cip.AdminDisableUserInput{UserPoolId: p, Username: u})
		case "enable":
			_, err = c.AdminEnableUser(ctx, &cip.AdminEnableUserInput{UserPoolId: p, Username: u})
		default:
			_, err = c.AdminUserGlobalSignOut(ctx, &cip.AdminUserGlobalSignOutInput{UserPoolId: p, Username: u})
		}
	case "set-password":
		if err := need(2); err != nil {
			return err
		}
		_, err = c.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{UserPoolId: p, Username: aws.String(rest[0]),
			Password: aws.String(rest[1]), Permanent: !*temporary})
	case "add-to-group", "remove-from-group":
		if err := need(2); err != nil {
			return err
		}
		if sub == "add-to-group" {
			_, err = c.AdminAddUserToGroup(ctx, &cip.AdminAddUserToGroupInput{UserPoolId: p, Username: aws.String(rest[0]), GroupName: aws.String(rest[1])})
		} else {
			_, err = c.AdminRemoveUserFromGroup(ctx, &cip.AdminRemoveUserFromGroupInput{UserPoolId: p, Username: aws.String(rest[0]), GroupName: aws.String(rest[1])})
		}
	default:
		return fmt.Errorf("%w: unknown users command %q", errUsage, sub)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}
