package cognito_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

func usernames(us []types.UserType) string {
	var names []string
	for _, u := range us {
		names = append(names, aws.ToString(u.Username))
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// ListUsers filters as Cognito does: status on the enabled flag,
// cognito:user_status case-insensitively, only searchable attributes;
// Limit is 0 to 60, pagination tokens are the server's own, and
// AttributesToGet selects the attributes returned.
func TestListUsersFilters(t *testing.T) {
	f := start(t)
	adm := f.adminClient("AKIAWRITDEMOADMIN001", "writ-demo-admin-secret", "")
	pool := aws.String(poolID)
	f.createInvited("dora", "Temp-Passw0rd1", attr("email", "dora@example.com"), attr("name", `Dora "D" Day`))
	f.createInvited("ed", "Temp-Passw0rd1")
	if _, err := adm.AdminDisableUser(f.ctx, &cip.AdminDisableUserInput{UserPoolId: pool, Username: aws.String("ed")}); err != nil {
		t.Fatal(err)
	}
	list := func(in cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		in.UserPoolId = pool
		return adm.ListUsers(f.ctx, &in)
	}
	for filter, want := range map[string]string{
		`status = "Enabled"`:                            "alice,bob,dora",
		`status = "Disabled"`:                           "ed",
		`status = "disabled"`:                           "",
		`cognito:user_status = "force_change_password"`: "dora,ed",
		`cognito:user_status = "Confirmed"`:             "alice,bob",
		`cognito:user_status ^= "force"`:                "dora,ed",
		`name = "Dora \"D\" Day"`:                       "dora",
		`email ^= "dora@"`:                              "dora",
		`username = "bob"`:                              "bob",
	} {
		out, err := list(cip.ListUsersInput{Filter: aws.String(filter)})
		if err != nil {
			t.Errorf("%s: %v", filter, err)
			continue
		}
		if got := usernames(out.Users); got != want {
			t.Errorf("%s: got %q, want %q", filter, got, want)
		}
	}
	for _, filter := range []string{`custom:department = "engineering"`, `nosuch = "x"`, `enabled = "true"`, `email_verified = "true"`, `email = dora`} {
		_, err := list(cip.ListUsersInput{Filter: aws.String(filter)})
		wantCode(t, err, "InvalidParameterException")
	}

	// Limit.
	for _, l := range []int32{-1, 61, 1000} {
		_, err := list(cip.ListUsersInput{Limit: aws.Int32(l)})
		wantCode(t, err, "InvalidParameterException")
	}
	if out, err := list(cip.ListUsersInput{Limit: aws.Int32(60)}); err != nil || len(out.Users) != 4 || out.PaginationToken != nil {
		t.Fatalf("Limit 60: %v %+v", err, out)
	}
	// Paging walks every user once; a token the server did not issue is
	// refused, as is one of another listing.
	var seen []types.UserType
	var token *string
	for page := 0; ; page++ {
		out, err := list(cip.ListUsersInput{Limit: aws.Int32(1), PaginationToken: token})
		if err != nil || len(out.Users) != 1 || page > 4 {
			t.Fatalf("page %d: %v %+v", page, err, out)
		}
		seen = append(seen, out.Users...)
		if token = out.PaginationToken; token == nil {
			break
		}
	}
	if got := usernames(seen); got != "alice,bob,dora,ed" {
		t.Errorf("paged: %s", got)
	}
	first, err := list(cip.ListUsersInput{Limit: aws.Int32(1)})
	if err != nil || first.PaginationToken == nil {
		t.Fatalf("first page: %v", err)
	}
	tok := aws.ToString(first.PaginationToken)
	for _, bad := range []string{"alice", "bob", tok + "x", "x" + tok, strings.Replace(tok, ".", ".A", 1)} {
		_, err := list(cip.ListUsersInput{PaginationToken: aws.String(bad)})
		wantCode(t, err, "InvalidParameterException")
	}
	if _, err := adm.AdminAddUserToGroup(f.ctx, &cip.AdminAddUserToGroupInput{UserPoolId: pool, Username: aws.String("bob"), GroupName: aws.String("staff")}); err != nil {
		t.Fatal(err)
	}
	gp, err := adm.ListUsersInGroup(f.ctx, &cip.ListUsersInGroupInput{UserPoolId: pool, GroupName: aws.String("staff"), Limit: aws.Int32(1)})
	if err != nil || gp.NextToken == nil {
		t.Fatalf("ListUsersInGroup: %v %+v", err, gp)
	}
	_, err = list(cip.ListUsersInput{PaginationToken: gp.NextToken})
	wantCode(t, err, "InvalidParameterException")

	// AttributesToGet.
	out, err := list(cip.ListUsersInput{Filter: aws.String(`username = "dora"`), AttributesToGet: []string{"email", "name"}})
	if err != nil || len(out.Users) != 1 {
		t.Fatalf("AttributesToGet: %v", err)
	}
	got := map[string]string{}
	for _, a := range out.Users[0].Attributes {
		got[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	if len(got) != 2 || got["email"] != "dora@example.com" || got["name"] != `Dora "D" Day` {
		t.Errorf("attributes: %v", got)
	}
	out, err = list(cip.ListUsersInput{AttributesToGet: []string{}})
	if err != nil || len(out.Users) != 4 {
		t.Fatalf("empty AttributesToGet: %v", err)
	}
	for _, u := range out.Users {
		if len(u.Attributes) != 0 {
			t.Errorf("%s: attributes %v with an empty AttributesToGet", aws.ToString(u.Username), u.Attributes)
		}
	}
	out, err = list(cip.ListUsersInput{Filter: aws.String(`username = "alice"`)})
	if err != nil || len(out.Users) != 1 || len(out.Users[0].Attributes) < 4 {
		t.Fatalf("no AttributesToGet: %v %+v", err, out)
	}
}
