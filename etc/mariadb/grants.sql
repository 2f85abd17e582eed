-- Grants for swampd's database path (swampd issue 5).  Review, set the password,
-- and run as a MariaDB administrator:  mariadb -u root < grants.sql
-- Database names are SWAMP's (viewer_store, assessment, metric); the tests create the
-- same objects in scratch databases and check the daemon works with exactly the
-- daemon grants below (tests/test_mariadb_store_viewer.py, tests/test_assessment_db.py).

-- 1. The daemon's own user (swampd.toml [mariadb] user/password_file).  It needs
--    store_viewer always; update_viewer_instance and viewer_launch_history only
--    with launch_history = true.  Nothing else: it never runs SQL it builds.
CREATE USER IF NOT EXISTS 'swampd'@'localhost' IDENTIFIED BY 'CHANGE-ME';
GRANT EXECUTE ON PROCEDURE viewer_store.store_viewer TO 'swampd'@'localhost';
GRANT EXECUTE ON PROCEDURE viewer_store.update_viewer_instance TO 'swampd'@'localhost';
GRANT SELECT, INSERT ON viewer_store.viewer_launch_history TO 'swampd'@'localhost';

-- 1b. Assessment runs ([mariadb] assessment_database, metric_database): the BOG from
--    exec_run_view, statuses through update_execution_run_status, results through
--    insert_results (SELECT on assessment_result: a retried save finds its row), the
--    flags SWAMP's Perl set directly, and metric runs' results and flags on metric_run.
GRANT SELECT ON assessment.exec_run_view TO 'swampd'@'localhost';
GRANT SELECT, UPDATE ON assessment.execution_record TO 'swampd'@'localhost';
GRANT SELECT ON assessment.assessment_result TO 'swampd'@'localhost';
GRANT EXECUTE ON PROCEDURE assessment.update_execution_run_status TO 'swampd'@'localhost';
GRANT EXECUTE ON PROCEDURE assessment.insert_results TO 'swampd'@'localhost';
GRANT SELECT, UPDATE ON metric.metric_run TO 'swampd'@'localhost';

-- 2. The sys_eval / sys_exec caller.  The procedures launch_viewer and
--    kill_assessment_run are SQL SECURITY DEFINER (SWAMP's default), so the web
--    user needs nothing beyond what SWAMP's user_setup.sql already grants:
--      GRANT EXECUTE ON PROCEDURE assessment.launch_viewer TO 'web'@'%';
--      GRANT EXECUTE ON PROCEDURE assessment.kill_assessment_run TO 'web'@'%';
--    A UDF needs no privilege to be called: any account that can run
--    arbitrary SQL can run sys_eval, i.e. any command as the mysql OS user.
--    Keep 'web' and every other application account to EXECUTE on procedures
--    (no direct SELECT sys_eval), as SWAMP's user_setup.sql does.
