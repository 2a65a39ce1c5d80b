-- description: Which services configured with paths a commit is a change of: those one of whose paths (glob patterns from the repository's root, `*` crossing folders) matches a file the commit added, modified or removed (core.commit_files). A commit whose files are unknown is a change of none of them; a service without paths is its whole repositories and needs no row here.
SELECT DISTINCT f.repo, f.sha, s.service
FROM core.commit_files f
JOIN config.service_paths s ON s.repo = f.repo AND len(s.paths) > 0
WHERE len(list_filter(s.paths, lambda pattern: f.path GLOB pattern)) > 0
