/* Unit tests for fcgi/api_import.c: the import document's own checks, one case per rule. */
#include "api.h"
#include "err.h"
#include "testlib.h"

static struct arena arena;
static struct request req;
static struct import_counts counts;

#define HEAD                                                                                       \
        "{\"format\":\"loom-export\",\"version\":1,\"project\":{\"id\":\"p\",\"name\":\"P\","      \
        "\"bead_prefix\":\"ab\"},"
#define BEADS3                                                                                     \
        "\"beads\":[{\"id\":\"ab-1\",\"title\":\"a\"},{\"id\":\"ab-2\",\"title\":\"b\"},"          \
        "{\"id\":\"ab-3\",\"title\":\"c\",\"type\":\"decision\"}]"

/* Parses and checks doc; returns the error code, message in req.error. */
static int run(const char *doc)
{
        json_object *obj;
        int rc;

        arena_reset(&arena);
        memset(&req, 0, sizeof(req));
        req.arena = &arena;
        rc = input_parse(&req, doc, strlen(doc), false, &obj);
        if (rc)
                return rc;
        return api_import_check(&req, obj, &counts);
}

TEST(good_document_passes_with_counts)
{
        arena_init(&arena, 0);
        CHECK_INT(run(HEAD BEADS3
                      ",\"dependencies\":[{\"bead_id\":\"ab-2\",\"depends_on_id\":"
                      "\"ab-1\",\"kind\":\"blocks\"},{\"bead_id\":\"ab-3\","
                      "\"depends_on_id\":\"ab-1\",\"kind\":\"related\"}],"
                      "\"comments\":[{\"id\":5,\"bead_id\":\"ab-1\",\"author_id\":\"x\","
                      "\"content\":\"hi\"},{\"id\":9,\"bead_id\":\"ab-1\","
                      "\"parent_id\":5,\"author_id\":\"y\",\"content\":\"re\"}],"
                      "\"decisions\":[{\"id\":\"ab-3\",\"question\":\"q\"}],"
                      "\"rename\":{\"id\":\"q\",\"bead_prefix\":\"cd\"},"
                      "\"renumber\":true}"),
                  ERR_OK);
        CHECK_INT(counts.beads, 3);
        CHECK_INT(counts.dependencies, 2);
        CHECK_INT(counts.comments, 2);
        CHECK_INT(counts.decisions, 1);
        arena_release(&arena);
}

TEST(header_and_fields)
{
        arena_init(&arena, 0);
        CHECK_INT(run("{\"format\":\"x\",\"version\":1}"), ERR_INVALID);
        CHECK_HAS(req.error, "format: must be \"loom-export\"");
        CHECK_INT(run(HEAD BEADS3 ",\"version\":3}"), ERR_INVALID);
        CHECK_INT(run("{\"format\":\"loom-export\",\"version\":2," BEADS3 "}"), ERR_INVALID);
        CHECK_HAS(req.error, "version: 2 is not supported");
        CHECK_INT(run(HEAD BEADS3 ",\"colour\":1}"), ERR_INVALID);
        CHECK_HAS(req.error, "unknown field 'colour'");
        CHECK_INT(run(HEAD "\"beads\":[{\"id\":\"ab-1\",\"title\":\"a\",\"priority\":7}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "beads[0].priority: must be an integer from 0 to 3");
        CHECK_INT(run(HEAD "\"beads\":[{\"id\":\"zz-1\",\"title\":\"a\"}]}"), ERR_INVALID);
        CHECK_HAS(req.error, "bead_prefix 'ab-'");
        CHECK_INT(run(HEAD "\"beads\":[{\"id\":\"ab-1\",\"title\":\"a\",\"blocks\":[]}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "beads[0].blocks: edges belong in \"dependencies\"");
        CHECK_INT(run(HEAD BEADS3 ",\"rename\":{\"bead_prefix\":\"1x\"}}"), ERR_INVALID);
        CHECK_HAS(req.error, "rename.bead_prefix");
        arena_release(&arena);
}

TEST(duplicates_and_dangling_references)
{
        arena_init(&arena, 0);
        CHECK_INT(run(HEAD "\"beads\":[{\"id\":\"ab-1\",\"title\":\"a\"},{\"id\":\"ab-1\","
                           "\"title\":\"b\"}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "beads: duplicate id ab-1 (beads[0] and beads[1])");
        CHECK_INT(run(HEAD BEADS3 ",\"dependencies\":[{\"bead_id\":\"ab-1\",\"depends_on_id\":"
                                  "\"ab-9\",\"kind\":\"blocks\"}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "dependencies[0].depends_on_id: bead ab-9 is not in beads");
        CHECK_INT(run(HEAD BEADS3 ",\"dependencies\":[{\"bead_id\":\"ab-1\",\"depends_on_id\":"
                                  "\"ab-2\",\"kind\":\"related\"},{\"bead_id\":\"ab-2\","
                                  "\"depends_on_id\":\"ab-1\",\"kind\":\"related\"}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "the same related edge");
        CHECK_INT(run(HEAD BEADS3 ",\"dependencies\":[{\"bead_id\":\"ab-1\",\"depends_on_id\":"
                                  "\"ab-2\",\"kind\":\"parent\"},{\"bead_id\":\"ab-1\","
                                  "\"depends_on_id\":\"ab-3\",\"kind\":\"parent\"}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "bead ab-1 has more than one parent");
        CHECK_INT(run(HEAD BEADS3 ",\"decisions\":[{\"id\":\"ab-1\"}]}"), ERR_INVALID);
        CHECK_HAS(req.error, "decisions[0].id: ab-1 is not a bead of type decision");
        arena_release(&arena);
}

TEST(cycles_are_named)
{
        arena_init(&arena, 0);
        /* ab-1 waits on ab-2 (blocks), ab-2 on ab-3 (parent), ab-3 on ab-1 (blocks) */
        CHECK_INT(run(HEAD BEADS3 ",\"dependencies\":[{\"bead_id\":\"ab-1\",\"depends_on_id\":"
                                  "\"ab-2\",\"kind\":\"blocks\"},{\"bead_id\":\"ab-2\","
                                  "\"depends_on_id\":\"ab-3\",\"kind\":\"parent\"},"
                                  "{\"bead_id\":\"ab-3\",\"depends_on_id\":\"ab-1\","
                                  "\"kind\":\"blocks\"}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "cycle ab-1 → ab-2 → ab-3 → ab-1");
        /* related edges are no waiting: a related "loop" is fine */
        CHECK_INT(run(HEAD BEADS3 ",\"dependencies\":[{\"bead_id\":\"ab-1\",\"depends_on_id\":"
                                  "\"ab-2\",\"kind\":\"blocks\"},{\"bead_id\":\"ab-1\","
                                  "\"depends_on_id\":\"ab-2\",\"kind\":\"related\"}]}"),
                  ERR_OK);
        arena_release(&arena);
}

TEST(comment_threads)
{
        arena_init(&arena, 0);
        CHECK_INT(run(HEAD BEADS3 ",\"comments\":[{\"id\":5,\"bead_id\":\"ab-1\",\"author_id\":"
                                  "\"x\",\"content\":\"a\",\"parent_id\":7},{\"id\":7,"
                                  "\"bead_id\":\"ab-1\",\"author_id\":\"x\",\"content\":\"b\"}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "a reply's parent must have a smaller id");
        CHECK_INT(run(HEAD BEADS3 ",\"comments\":[{\"id\":5,\"bead_id\":\"ab-1\",\"author_id\":"
                                  "\"x\",\"content\":\"a\"},{\"id\":7,\"bead_id\":\"ab-2\","
                                  "\"author_id\":\"x\",\"content\":\"b\",\"parent_id\":5}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "comment 5 belongs to bead ab-1");
        CHECK_INT(run(HEAD BEADS3 ",\"comments\":[{\"id\":5,\"bead_id\":\"ab-1\",\"author_id\":"
                                  "\"x\",\"content\":\"a\"},{\"id\":5,\"bead_id\":\"ab-2\","
                                  "\"author_id\":\"x\",\"content\":\"b\"}]}"),
                  ERR_INVALID);
        CHECK_HAS(req.error, "comments: duplicate id 5");
        arena_release(&arena);
}

TESTS(TESTLIB_CASE(good_document_passes_with_counts), TESTLIB_CASE(header_and_fields),
      TESTLIB_CASE(duplicates_and_dangling_references), TESTLIB_CASE(cycles_are_named),
      TESTLIB_CASE(comment_threads))
