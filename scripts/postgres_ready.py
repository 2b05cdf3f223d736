"""Exit 0 when a PostgreSQL server answers at the URL given (make test runs the suite on it
then). The database itself need not exist: the tests create their own, test_<name>."""

import sys

import psycopg


def main(url: str) -> int:
    try:
        url = url.replace("postgres://", "postgresql://", 1)
        psycopg.connect(url, dbname="postgres", connect_timeout=3).close()
    except psycopg.Error as exc:
        print(f"PostgreSQL at {url}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
