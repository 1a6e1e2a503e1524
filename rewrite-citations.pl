#!/usr/bin/env perl
# Rewrites the citations in doc comments to files of the repository:
#   API-NOTES.md  -> docs/API-BEHAVIOUR.md, with the section name quoted
#   DESIGN.md     -> docs/DESIGN.md
#   issue #N      -> the reason, said in words
#   paths that do not resolve (behaviour.ts from src/core, shared/...) -> repository paths
# Idempotent: every rule matches only the old form, so it can be re-run after merging other branches.
# Run from the repository root: perl rewrite-citations.pl
use strict;
use warnings;

my @files = grep { /\.(ts|md)$/ && $_ ne "test/ship/citations.test.ts" && -f $_ }
  split /\n/, `git ls-files -- src test bench docs/BENCHMARKS.md`;

# Literal replacements (old, new), for the citations that need words and not just a new path.
my $data = do { local $/; <DATA> };
my @pairs = map { [ split /\n----\n/, $_, 2 ] } split /\n====\n/, $data;
chomp $pairs[-1][1];

my $schema_changed = 0;
my @rewritten;
for my $file (@files) {
  open my $in, "<", $file or die "$file: $!";
  my $text = do { local $/; <$in> };
  close $in;
  my $before = $text;

  for my $pair (@pairs) {
    my ($old, $new) = @$pair;
    $text =~ s/\Q$old\E/$new/g;
  }
  # Sections named without quotes: quote them, so a test can check each is a heading.
  $text =~ s/API-NOTES\.md, Create\/Update/API-NOTES.md, "Create", "Update"/g;
  $text =~ s/API-NOTES\.md, Create, Scopes, Update/API-NOTES.md, "Create", "Scopes", "Update"/g;
  $text =~ s/API-NOTES\.md, (Scopes|Update|Create|Endpoints|Rate limits|Envelope and auth)\b/API-NOTES.md, "$1"/g;
  $text =~ s/API-NOTES\.md "/API-NOTES.md, "/g;
  $text =~ s/DESIGN\.md, "Small interfaces"/DESIGN.md, "Small interfaces at the edges"/g;
  $text =~ s/DESIGN\.md, Errors\b/DESIGN.md, "Errors"/g;
  # The files themselves.
  $text =~ s/(?<![\w\/])API-NOTES\.md/docs\/API-BEHAVIOUR.md/g;
  $text =~ s/(?<![\w\/])DESIGN\.md/docs\/DESIGN.md/g;

  $text = reflow($text) if $file =~ /\.ts$/;
  next if $text eq $before;
  open my $out, ">", $file or die "$file: $!";
  print $out $text;
  close $out;
  $schema_changed = 1 if $file eq "src/config/schema.ts";
  push @rewritten, $file;
  print "rewrote $file\n";
}

# Code lines that grew (a string in a schema description) are Prettier's to wrap.
my @ts = grep { /\.ts$/ } @rewritten;
system("npx", "prettier", "--log-level", "warn", "--write", @ts) == 0 or die if @ts;

# A schema description changed: regenerate what is generated from it.
if ($schema_changed) {
  system("npx tsx src/cli/main.ts schema > config/schema/desired.schema.json") == 0 or die;
  system("npx tsx src/cli/main.ts schema --config > config/schema/config.schema.json") == 0 or die;
  system("npx tsx src/cli/main.ts schema --reference > docs/CONFIGURATION.md") == 0 or die;
  system("npx prettier --write config/schema/desired.schema.json config/schema/config.schema.json docs/CONFIGURATION.md >/dev/null") == 0 or die;
}

# Longer citations push comment lines past the 110 columns the code keeps to: break such a line at
# its last space within 110 (not inside a quoted section name) and carry the rest into the next line
# of the same paragraph, or onto a new line of its own, cascading. Only lines holding a rewritten
# citation start this; Markdown tables inside comments keep their width.
sub reflow {
  my @lines = split /\n/, shift, -1;
  my %carried;
  for (my $i = 0; $i < @lines; $i++) {
    next if length($lines[$i]) <= 110;
    next unless $carried{$i} || $lines[$i] =~ m{docs/(?:API-BEHAVIOUR|DESIGN)\.md};
    if ($lines[$i] =~ /^(\s*)\/\*\* (.*) \*\/$/) {    # a one-line /** ... */ becomes a block
      splice @lines, $i, 1, "$1/**", "$1 * $2", "$1 */";
      $i++;
    }
    next unless $lines[$i] =~ /^(\s*(?:\*|\/\/) ?(?:\s*- |\s*))\S/;
    my $lead = $1;
    next if $lines[$i] =~ /^\s*\* \|/;
    (my $cont = $lead) =~ s/-/ /;
    my $cut = rindex($lines[$i], " ", 110);
    my $outside = $cut;
    $outside = rindex($lines[$i], " ", $outside - 1)
      while $outside > length($lead) && (() = substr($lines[$i], 0, $outside) =~ /"/g) % 2;
    $cut = $outside if $outside > length($lead);
    next if $cut <= length($lead);
    my $rest = substr($lines[$i], $cut + 1);
    $lines[$i] = substr($lines[$i], 0, $cut);
    my $next = $i + 1 < @lines ? $lines[$i + 1] : "";
    if ($next =~ /^\Q$cont\E(\S.*)$/ && $1 !~ /^(?:- |\||@|\*\/)/) {
      $lines[$i + 1] = "$cont$rest $1";
      $carried{$i + 1} = 1;
    } else {
      splice @lines, $i + 1, 0, "$cont$rest";
    }
  }
  return join "\n", @lines;
}

__DATA__
 * | scopes                      | scopes req | a set, compared with `openid`/`offline_access` taken out: the server    |
 * |                             |            | adds or removes them by itself (API-NOTES.md, Scopes); the body sends   |
 * |                             |            | the base scopes plus exactly the protocol scopes the server would hold  |
----
 * | scopes                      | scopes req | a set, compared with `openid`/`offline_access` taken out: the server    |
 * |                             |            | adds or removes them by itself (docs/API-BEHAVIOUR.md, "Scopes"); the   |
 * |                             |            | body sends the base scopes plus exactly the protocol scopes the server  |
 * |                             |            | would hold                                                              |
====
 * | token_endpoint_auth_method  | scalar req | exact; between the confidential methods a plain patch; between `none`  |
 * |                             |            | and a confidential method a blocking `needs-replacement` conflict (the  |
 * |                             |            | emulator refuses it, behaviour.ts; a PATCH could not return a secret)   |
----
 * | token_endpoint_auth_method  | scalar req | exact; between the confidential methods a plain patch; between `none`   |
 * |                             |            | and a confidential method a blocking `needs-replacement` conflict (the  |
 * |                             |            | emulator refuses it, src/emulator/behaviour.ts; a PATCH could not       |
 * |                             |            | return a secret)                                                        |
====
 * | client_uri                  | uri opt    | exact string; never re-sent when unchanged (re-sending restarts         |
 * |                             |            | verification, API-NOTES.md, Update); a host change (or clear) once the   |
 * |                             |            | live host is verified is a blocking `needs-replacement` conflict          |
----
 * | client_uri                  | uri opt    | exact string; never re-sent when unchanged (re-sending restarts         |
 * |                             |            | verification, docs/API-BEHAVIOUR.md, "Update"); a host change (or       |
 * |                             |            | clear) once the live host is verified is a blocking `needs-replacement` |
 * |                             |            | conflict                                                                |
====
 * | visibility                  | ratchet    | private -> public only when the promotion preconditions hold with the   |
 * |                             |            | post-patch values (else a `visibility-pending` item naming what is      |
 * |                             |            | missing); public -> private is a non-blocking `visibility-downgrade`     |
 * |                             |            | conflict (promotion is permanent, API-NOTES.md, Update)                 |
----
 * | visibility                  | ratchet    | private -> public only when the promotion preconditions hold with the   |
 * |                             |            | post-patch values (else a `visibility-pending` item naming what is      |
 * |                             |            | missing); public -> private is a non-blocking `visibility-downgrade`    |
 * |                             |            | conflict (promotion is permanent, docs/API-BEHAVIOUR.md, "Update")      |
====
  /** Required on create and not clearable with null (`REQUIRED_FIELDS` in schemas.ts). */
----
  /** Required on create and not clearable with null (`REQUIRED_FIELDS` in src/cloudflare/schemas.ts). */
====
 * would need a secret to appear or vanish, which a PATCH cannot return (API-NOTES.md: the secret is
 * shown only at create and rotate), and the emulator refuses it (behaviour.ts): a new client is needed.
----
 * would need a secret to appear or vanish, which a PATCH cannot return (docs/API-BEHAVIOUR.md, "The
 * client object": the secret is shown only at create and rotate), and the emulator refuses it
 * (src/emulator/behaviour.ts): a new client is needed.
====
 * zod schemas for what the Cloudflare OAuth-clients API returns, from Cloudflare's OpenAPI document
 * (`shared/cloudflare/oauth-clients.openapi.json`) and API-NOTES.md. Responses are validated at the
 * edge so that a response that breaks the contract fails with the name of the field, not deep inside
 * the planner.
----
 * zod schemas for what the Cloudflare OAuth-clients API returns, from Cloudflare's published OpenAPI
 * document and docs/API-BEHAVIOUR.md. Responses are validated at the edge so that a response that
 * breaks the contract fails with the name of the field, not deep inside the planner.
====
/** `result` of `GET /accounts/{account_id}/oauth_clients`: one page, the whole list (API-NOTES.md). */
----
/** `result` of `GET /accounts/{account_id}/oauth_clients`: one page, the whole list (docs/API-BEHAVIOUR.md, "Endpoints"). */
====
`public` promotes the client, once and for ever (API-NOTES.md).
----
`public` promotes the client, once and for ever: the API has no way back.
====
 * A local emulator of Cloudflare's OAuth-clients API (API-NOTES.md):
----
 * A local emulator of Cloudflare's OAuth-clients API (docs/API-BEHAVIOUR.md):
====
(verification is per host, API-NOTES.md)
----
(verification is per host, docs/API-BEHAVIOUR.md, "Update")
====
(API-NOTES.md: on every response)
----
(docs/API-BEHAVIOUR.md, "Rate limits": on every response)
====
 * The failure table. API-NOTES.md: 400 for every validation
----
 * The failure table. docs/API-BEHAVIOUR.md, "Envelope and auth": 400 for every validation
====
 * Account ids: API-NOTES.md says "32 characters";
----
 * Account ids: docs/API-BEHAVIOUR.md, "Endpoints", says "32 characters";
====
/** Client ids the emulator generates: 32 lowercase hex characters (API-NOTES.md). */
----
/** Client ids the emulator generates: 32 lowercase hex characters (docs/API-BEHAVIOUR.md, "Endpoints"). */
====
(API-NOTES.md: "cannot be sent")
----
(docs/API-BEHAVIOUR.md, "Create": "cannot be sent")
====
(API-NOTES.md: code 10000)
----
(docs/API-BEHAVIOUR.md, "Envelope and auth": code 10000)
====
Promotion to `public` is one-way (API-NOTES.md). */
----
Promotion to `public` is one-way (docs/API-BEHAVIOUR.md, "Update"). */
====
The shape follows undici's error classes and Flux's requeue/stall split (see DESIGN.md).
----
The shape follows undici's error classes and Flux's requeue/stall split (docs/DESIGN.md, "Errors").
====
  // Dry-run is decided here, once: without a writer nothing can be written (DESIGN.md).
----
  // Dry-run is decided here, once: without a writer nothing can be written
  // (docs/DESIGN.md, "Dry-run decided once").
====
 * After a crash between intent and answer of a create: did the POST make a client (src/core
 * rotation-plan.ts `findCreated`)? None: the create never happened; the entry is dropped and the plan
 * creates the client again.
----
 * After a crash between intent and answer of a create: did the POST make a client
 * (src/core/rotation-plan.ts `findCreated`)? None: the create never happened; the entry is dropped
 * and the plan creates the client again.
====
(run-record.ts `outcomeOf`)
----
(daemon/run-record.ts `outcomeOf`)
====
 * Where the desired state of one run comes from: the watched directory (sources/directory.ts) or a
 * git branch (sources/git.ts). The daemon asks for one prepared run per run and knows nothing else
 * about either.
----
 * Where the desired state of one run comes from: the watched directory
 * (src/engine/sources/directory.ts) or a git branch (src/engine/sources/git.ts). The daemon asks for
 * one prepared run per run and knows nothing else about either.
====
    // Work an earlier, interrupted run left in the journal (issue #4), finished before planning.
----
    // Work an earlier, interrupted run left in the journal, finished before planning: a create whose
    // answer was lost, a secret minted but not yet published.
====
 * `rotate`: the secret rotation verb (issue #4), and
----
 * `rotate`: the secret rotation verb, and
====
 * means "not set", and the planner clears it on the live client (issue #3).
----
 * means "not set", and the planner clears it on the live client, so the YAML alone says what a client is.
====
/** The clients this tool created or adopted, per account (state directory, issue #3). */
----
/** The clients this tool created or adopted, per account (state directory): the only ones it may prune. */
====
  /** The clock, passed in (the core never reads it). Reserved for rotation due-ness (issue #4). */
----
  /**
   * The clock, passed in (the core never reads it). computePlan does not use it yet: the plan's
   * rotations are computed apart (src/core/plan-rotations.ts).
   */
====
/** Reserved for issue #4 (secret rotation). Always empty for now. */
----
/**
 * A secret rotation due for a client, as the plan shows it (src/core/rotation.ts): carried out by
 * `rotate`, never by `apply`, and not part of the plan checksum.
 */
====
 * Rotation due-ness (issue #4), pure:
----
 * Rotation due-ness, pure:
====
  /** The secret write-ahead journal: every create with a secret is journaled step by step (issue #4). */
----
  /**
   * The secret write-ahead journal: every create with a secret is journaled step by step, so a crash at
   * any point leaves a record the next run resumes from.
   */
====
   * rotation step must reach its journal record (issue #5, "a sink write after a mint is never
   * abandoned"). Timeouts still bound every call.
----
   * rotation step must reach its journal record, since a minted secret abandoned on the way exists
   * nowhere else. Timeouts still bound every call.
====
  /** The secret write-ahead journal (issue #4): resumed before planning when a writer is present. */
----
  /** The secret write-ahead journal: resumed before planning when a writer is present. */
====
  /** The config's rotation defaults, for the plan's rotation items (issue #4). */
----
  /** The config's rotation defaults, for the plan's rotation items. */
====
  // Crash recovery first (issue #4): creates whose answer was lost, secrets minted but not published.
----
  // Crash recovery first: creates whose answer was lost, secrets minted but not published.
====
 * One line per rotation item (issue #4): what
----
 * One line per rotation item: what
====
/** Secret rotations as a short list (issue #4); empty when there are none. */
----
/** Secret rotations as a short list; empty when there are none. */
====
 * Steps, in order (issue #4, "two phases"):
----
 * Steps, in order (minting and publishing are two phases, each step recorded before it starts):
====
 * The crash test (issue #4, done-when): the real program
----
 * The crash test: the real program
====
 * Targets (issue #3): plan under 1 s
----
 * Targets: plan under 1 s
====
(issue #3: plan under 1 s
----
(targets: plan under 1 s
