-- SWAMP's assessment path, for the tests: the `assessment` and `metric` objects swampd reads
-- and writes, and the event that launches runs.  Our own SQL, written from
-- reference/swamp-db-deploy.md (§1.4-§1.9, §2.2-§2.3) and reference/swamp-assessment.md
-- (§3.2, §3.6, §4), with SWAMP's names, columns and signatures.
--
-- Schema names are SWAMP's (assessment., metric., package_store., tool_shed.,
-- platform_store., project.) and every object is named with its schema, as SWAMP's
-- procedures name them.  tests/support/assessment_db.py rewrites those names to a
-- per-run prefix (swampd_t<hex>_assessment, ...) before loading, so each test has a
-- world of its own, and loads the file under MariaDB's strict sql_mode (procedures,
-- triggers and the event keep the mode they are created under).
--
-- Differences from SWAMP, on purpose:
-- * Program paths come from assessment.swampd_test_setting (SWAMP hard-codes
--   /usr/local/bin/...), and so do the launch countdown (SWAMP: 20) and
--   validate_execution_record's answer (SWAMP checks users, projects, sharing and
--   permissions; here it answers the setting, 'Y' by default).
-- * Values reach the shell through swampd_quote() (one shell word each); SWAMP's
--   execute_execution_record splices the uuid unquoted and kill_assessment_run
--   between unescaped single quotes (etc/mariadb/README.md has the fix).
-- * Every sys_exec of execute_execution_record and its wait status is logged in
--   assessment.swampd_test_exec_log, and every status change of a run (whoever
--   wrote it) in assessment.swampd_test_status_log, so tests can read the order.
-- * update_user is cut to its column's 25 characters (SWAMP's server is not
--   strict and cuts silently; here a long account name would fail the trigger).
-- * No foreign keys to the project, user and permission tables SWAMP has; only
--   the tables exec_run_view and insert_results read (swamp-assessment.md §4).

-- ---------------------------------------------------------------- other schemas
CREATE TABLE project.user_permission (
  user_permission_uid VARCHAR(45) PRIMARY KEY,
  user_uid VARCHAR(45) NOT NULL,
  permission_code VARCHAR(100) NOT NULL,
  meta_information VARCHAR(500)
);

CREATE TABLE package_store.package_type (
  package_type_id INT PRIMARY KEY,
  name VARCHAR(50) NOT NULL
);
INSERT INTO package_store.package_type VALUES
  (1, 'C/C++'), (2, 'Java 7 Source Code'), (3, 'Java 7 Bytecode'), (4, 'Python2'), (5, 'Python3'),
  (6, 'Android Java Source Code'), (7, 'Ruby'), (8, 'Ruby Sinatra'), (9, 'Ruby on Rails'),
  (10, 'Ruby Padrino'), (11, 'Android .apk'), (12, 'Java 8 Source Code'), (13, 'Java 8 Bytecode'),
  (14, 'Web Scripting'), (15, '.NET');

CREATE TABLE package_store.package (
  package_id INT AUTO_INCREMENT PRIMARY KEY,
  package_uuid VARCHAR(45) NOT NULL UNIQUE,
  name VARCHAR(100) NOT NULL,
  package_language VARCHAR(200),
  package_type_id INT
);

CREATE TABLE package_store.package_version (
  package_version_id INT AUTO_INCREMENT PRIMARY KEY,
  package_version_uuid VARCHAR(45) NOT NULL UNIQUE,
  package_uuid VARCHAR(45) NOT NULL,
  version_string VARCHAR(100),
  package_path VARCHAR(200),
  checksum VARCHAR(200),
  source_path VARCHAR(1000),
  build_file VARCHAR(255),
  build_system VARCHAR(255),
  build_cmd VARCHAR(4000),
  build_target VARCHAR(255),
  build_dir VARCHAR(255) DEFAULT '.',
  build_opt VARCHAR(255),
  config_cmd VARCHAR(4000),
  config_opt VARCHAR(255),
  config_dir VARCHAR(255),
  bytecode_class_path VARCHAR(1000),
  bytecode_aux_class_path VARCHAR(1000),
  bytecode_source_path VARCHAR(1000),
  android_sdk_target VARCHAR(255),
  android_lint_target VARCHAR(255),
  android_redo_build TINYINT(1),
  use_gradle_wrapper TINYINT(1),
  language_version VARCHAR(255),
  maven_version VARCHAR(255),
  android_maven_plugin VARCHAR(255),
  exclude_paths VARCHAR(4000),
  package_build_settings TEXT,
  package_info TEXT
);

CREATE TABLE package_store.package_version_dependency (
  package_version_dependency_id INT AUTO_INCREMENT PRIMARY KEY,
  package_version_uuid VARCHAR(45) NOT NULL,
  platform_version_uuid VARCHAR(45) NOT NULL,
  dependency_list VARCHAR(8000)
);

CREATE TABLE tool_shed.tool (
  tool_id INT AUTO_INCREMENT PRIMARY KEY,
  tool_uuid VARCHAR(45) NOT NULL UNIQUE,
  name VARCHAR(100) NOT NULL,
  policy_code VARCHAR(100)
);

CREATE TABLE tool_shed.tool_version (
  tool_version_id INT AUTO_INCREMENT PRIMARY KEY,
  tool_version_uuid VARCHAR(45) NOT NULL UNIQUE,
  tool_uuid VARCHAR(45) NOT NULL,
  version_string VARCHAR(100),
  tool_path VARCHAR(200),
  checksum VARCHAR(200)
);

CREATE TABLE platform_store.platform (
  platform_id INT AUTO_INCREMENT PRIMARY KEY,
  platform_uuid VARCHAR(45) NOT NULL UNIQUE,
  name VARCHAR(100) NOT NULL
);

CREATE TABLE platform_store.platform_version (
  platform_version_id INT AUTO_INCREMENT PRIMARY KEY,
  platform_version_uuid VARCHAR(45) NOT NULL UNIQUE,
  platform_uuid VARCHAR(45) NOT NULL,
  version_string VARCHAR(100),
  platform_identifier VARCHAR(200)
);

CREATE TABLE metric.metric_tool (
  metric_tool_uuid VARCHAR(45) PRIMARY KEY,
  name VARCHAR(100) NOT NULL
);

CREATE TABLE metric.metric_tool_version (
  metric_tool_version_uuid VARCHAR(45) PRIMARY KEY,
  metric_tool_uuid VARCHAR(45) NOT NULL,
  version_string VARCHAR(100),
  tool_path VARCHAR(200),
  checksum VARCHAR(200)
);

CREATE TABLE metric.metric_run (
  metric_run_uuid VARCHAR(45) PRIMARY KEY,
  package_uuid VARCHAR(45),
  package_version_uuid VARCHAR(45),
  tool_uuid VARCHAR(45),
  tool_version_uuid VARCHAR(45),
  platform_uuid VARCHAR(45),
  platform_version_uuid VARCHAR(45),
  package_owner_uuid VARCHAR(45),
  launch_flag TINYINT(1) NOT NULL DEFAULT 1,
  launch_counter INT(1) UNSIGNED NOT NULL DEFAULT 0,
  launch_countdown INT(1) UNSIGNED NOT NULL DEFAULT 0,
  submitted_to_condor_flag TINYINT(1) NOT NULL DEFAULT 0,
  complete_flag TINYINT(1) NOT NULL DEFAULT 0,
  status VARCHAR(100) NOT NULL DEFAULT 'WAITING TO START',
  run_date TIMESTAMP NULL,
  completion_date TIMESTAMP NULL,
  queued_duration VARCHAR(12),
  execution_duration VARCHAR(12),
  execute_node_architecture_id VARCHAR(128),
  slot_size_start VARCHAR(128),
  slot_size_end VARCHAR(128),
  total_lines INT,
  code_lines INT,
  pkg_code_lines INT,
  pkg_comment_lines INT,
  pkg_blank_lines INT,
  pkg_total_lines INT,
  cpu_utilization VARCHAR(32),
  vm_hostname VARCHAR(100),
  vm_username VARCHAR(50),
  vm_password VARCHAR(50),
  vm_ip_address VARCHAR(50),
  vm_image VARCHAR(100),
  tool_filename VARCHAR(100),
  file_host VARCHAR(200),
  result_path VARCHAR(200),
  result_checksum VARCHAR(200),
  log_path VARCHAR(200),
  log_checksum VARCHAR(200),
  status_out TEXT,
  status_out_error_msg VARCHAR(200),
  create_user VARCHAR(25),
  create_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_user VARCHAR(25),
  update_date TIMESTAMP NULL
);

-- ---------------------------------------------------------------- assessment
CREATE TABLE assessment.execution_record (
  execution_record_id INT AUTO_INCREMENT PRIMARY KEY,
  execution_record_uuid VARCHAR(45) NOT NULL UNIQUE,
  assessment_run_uuid VARCHAR(45) NOT NULL,
  run_request_uuid VARCHAR(45) NOT NULL,
  user_uuid VARCHAR(45),
  launch_flag TINYINT(1) NOT NULL DEFAULT 1,
  launch_counter INT(1) UNSIGNED NOT NULL DEFAULT 0,
  launch_countdown INT(1) UNSIGNED NOT NULL DEFAULT 0,
  submitted_to_condor_flag TINYINT(1) NOT NULL DEFAULT 0,
  complete_flag TINYINT(1) NOT NULL DEFAULT 0,
  notify_when_complete_flag TINYINT(1) NOT NULL DEFAULT 0,
  project_uuid VARCHAR(45) NOT NULL,
  platform_version_uuid VARCHAR(45) NOT NULL,
  tool_version_uuid VARCHAR(45) NOT NULL,
  package_version_uuid VARCHAR(45) NOT NULL,
  status VARCHAR(100) NOT NULL DEFAULT 'WAITING TO START',
  run_date TIMESTAMP NULL,
  completion_date TIMESTAMP NULL,
  queued_duration VARCHAR(12),
  execution_duration VARCHAR(12),
  execute_node_architecture_id VARCHAR(128),
  slot_size_start VARCHAR(128),
  slot_size_end VARCHAR(128),
  total_lines INT,
  code_lines INT,
  cpu_utilization VARCHAR(32),
  vm_hostname VARCHAR(100),
  vm_username VARCHAR(50),
  vm_password VARCHAR(50),
  vm_ip_address VARCHAR(50),
  vm_image VARCHAR(100),
  tool_filename VARCHAR(100),
  create_user VARCHAR(25),
  create_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_user VARCHAR(25),
  update_date TIMESTAMP NULL,
  delete_date TIMESTAMP NULL,
  INDEX (project_uuid), INDEX (user_uuid), INDEX (assessment_run_uuid), INDEX (complete_flag)
);

CREATE TABLE assessment.assessment_result (
  assessment_result_uuid VARCHAR(45) PRIMARY KEY,
  execution_record_uuid VARCHAR(45),
  project_uuid VARCHAR(45) NOT NULL,
  weakness_cnt INT,
  file_host VARCHAR(200) NOT NULL,
  file_path VARCHAR(200) NOT NULL,
  checksum VARCHAR(200),
  source_archive_path VARCHAR(200),
  source_archive_checksum VARCHAR(200),
  log_path VARCHAR(200),
  log_checksum VARCHAR(200),
  status_out TEXT,
  status_out_error_msg VARCHAR(200),
  platform_name VARCHAR(100),
  platform_version VARCHAR(100),
  tool_name VARCHAR(100),
  tool_version VARCHAR(100),
  package_name VARCHAR(100),
  package_version VARCHAR(100),
  platform_version_uuid VARCHAR(45),
  tool_version_uuid VARCHAR(45),
  package_version_uuid VARCHAR(45),
  tool_uuid VARCHAR(45),
  policy_code VARCHAR(100),
  run_date TIMESTAMP NULL,
  execute_node_architecture_id VARCHAR(128),
  vm_hostname VARCHAR(100),
  vm_ip_address VARCHAR(50),
  create_user VARCHAR(25),
  create_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_user VARCHAR(25),
  update_date TIMESTAMP NULL,
  delete_date TIMESTAMP NULL,
  CONSTRAINT fk_result_record FOREIGN KEY (execution_record_uuid)
    REFERENCES assessment.execution_record (execution_record_uuid) ON DELETE SET NULL
);

CREATE TABLE assessment.sys_exec_cmd_log (
  sys_exec_cmd_log_id INT AUTO_INCREMENT PRIMARY KEY,
  cmd VARCHAR(5000),
  caller VARCHAR(100),
  create_user VARCHAR(25),
  create_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE assessment.system_status (
  status_key VARCHAR(100) PRIMARY KEY,
  value VARCHAR(500),
  update_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO assessment.system_status (status_key, value) VALUES
  ('CURRENTLY_PROCESSING_EXECUTION_RECORDS', 'N'), ('CURRENTLY_RUNNING_SCHEDULER', 'N');

CREATE TABLE assessment.swampd_test_setting (
  name VARCHAR(64) PRIMARY KEY,
  value VARCHAR(500) NOT NULL
);
INSERT INTO assessment.swampd_test_setting VALUES
  ('execute_execution_record_cmd', '/usr/local/bin/execute_execution_record'),
  ('kill_run_cmd', '/usr/local/bin/kill_run'),
  ('launch_countdown', '20'),
  ('validate_answer', 'Y');

CREATE TABLE assessment.swampd_test_exec_log (
  id INT AUTO_INCREMENT PRIMARY KEY,
  cmd TEXT,
  return_code INT,
  create_date TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);

CREATE TABLE assessment.swampd_test_status_log (
  id INT AUTO_INCREMENT PRIMARY KEY,
  run_uuid VARCHAR(45) NOT NULL,
  old_status VARCHAR(100),
  new_status VARCHAR(100),
  create_date TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  INDEX (run_uuid)
);

-- The BOG source (swamp-assessment.md §4): incomplete ARuns and MRuns, 41 columns in SWAMP's order.
CREATE VIEW assessment.exec_run_view AS
SELECT er.execution_record_uuid AS execution_record_uuid,
       er.launch_counter AS launch_counter,
       er.project_uuid AS project_uuid,
       er.user_uuid AS user_uuid,
       pkg.name AS package_name,
       pv.version_string AS package_version,
       pkg.package_language AS package_language,
       pt.name AS package_type,
       pv.package_path AS package_path,
       pv.checksum AS pkg_checksum,
       pv.source_path AS source_path,
       pv.build_file AS build_file,
       pv.build_system AS build_system,
       pv.build_cmd AS build_cmd,
       pv.build_target AS build_target,
       pv.build_dir AS build_dir,
       pv.build_opt AS build_opt,
       pv.config_cmd AS config_cmd,
       pv.config_opt AS config_opt,
       pv.config_dir AS config_dir,
       pv.bytecode_class_path AS bytecode_class_path,
       pv.bytecode_aux_class_path AS bytecode_aux_class_path,
       pv.bytecode_source_path AS bytecode_source_path,
       pv.android_sdk_target AS android_sdk_target,
       pv.android_lint_target AS android_lint_target,
       pv.android_redo_build AS android_redo_build,
       pv.use_gradle_wrapper AS use_gradle_wrapper,
       pv.language_version AS language_version,
       pv.maven_version AS maven_version,
       pv.android_maven_plugin AS android_maven_plugin,
       pv.exclude_paths AS exclude_paths,
       pv.package_build_settings AS package_build_settings,
       pv.package_info AS package_info,
       t.name AS tool_name,
       tv.version_string AS version_string,
       tv.tool_path AS tool_path,
       tv.checksum AS tool_checksum,
       plv.platform_identifier AS platform_identifier,
       dep.dependency_list AS dependency_list,
       CASE WHEN er.tool_version_uuid = 'a6d2a89e-4a1c-11e7-a337-001a4a81450b'
            THEN (SELECT up.meta_information FROM project.user_permission up
                   WHERE up.user_uid = er.user_uuid AND up.permission_code = 'sonatype-user')
            ELSE NULL END AS user_cnf,
       er.notify_when_complete_flag AS notify_when_complete_flag
  FROM assessment.execution_record er
  JOIN package_store.package_version pv ON pv.package_version_uuid = er.package_version_uuid
  JOIN package_store.package pkg ON pkg.package_uuid = pv.package_uuid
  JOIN package_store.package_type pt ON pt.package_type_id = pkg.package_type_id
  JOIN tool_shed.tool_version tv ON tv.tool_version_uuid = er.tool_version_uuid
  JOIN tool_shed.tool t ON t.tool_uuid = tv.tool_uuid
  JOIN platform_store.platform_version plv ON plv.platform_version_uuid = er.platform_version_uuid
  LEFT JOIN package_store.package_version_dependency dep
         ON dep.package_version_uuid = er.package_version_uuid
        AND dep.platform_version_uuid = er.platform_version_uuid
 WHERE er.complete_flag = 0
UNION
SELECT mr.metric_run_uuid, mr.launch_counter, 'METRIC', 'METRIC',
       pkg.name, pv.version_string, pkg.package_language, pt.name, pv.package_path, pv.checksum, pv.source_path,
       pv.build_file, pv.build_system, pv.build_cmd, pv.build_target, pv.build_dir, pv.build_opt,
       pv.config_cmd, pv.config_opt, pv.config_dir,
       pv.bytecode_class_path, pv.bytecode_aux_class_path, pv.bytecode_source_path,
       pv.android_sdk_target, pv.android_lint_target, pv.android_redo_build, pv.use_gradle_wrapper,
       pv.language_version, pv.maven_version, pv.android_maven_plugin, pv.exclude_paths,
       pv.package_build_settings, pv.package_info,
       mt.name, mtv.version_string, mtv.tool_path, mtv.checksum,
       plv.platform_identifier, dep.dependency_list, NULL, 0
  FROM metric.metric_run mr
  JOIN package_store.package_version pv ON pv.package_version_uuid = mr.package_version_uuid
  JOIN package_store.package pkg ON pkg.package_uuid = pv.package_uuid
  JOIN package_store.package_type pt ON pt.package_type_id = pkg.package_type_id
  JOIN metric.metric_tool_version mtv ON mtv.metric_tool_version_uuid = mr.tool_version_uuid
  JOIN metric.metric_tool mt ON mt.metric_tool_uuid = mtv.metric_tool_uuid
  JOIN platform_store.platform_version plv ON plv.platform_version_uuid = mr.platform_version_uuid
  LEFT JOIN package_store.package_version_dependency dep
         ON dep.package_version_uuid = mr.package_version_uuid
        AND dep.platform_version_uuid = mr.platform_version_uuid
 WHERE mr.complete_flag = 0;

DELIMITER $$

-- One shell word for any value: 'it'\''s'.  NULL stays NULL.
CREATE FUNCTION assessment.swampd_quote(v TEXT) RETURNS TEXT DETERMINISTIC
BEGIN
  RETURN concat(char(39), replace(v, char(39), concat(char(39), char(92), char(39), char(39))), char(39));
END$$

CREATE FUNCTION assessment.swampd_setting(setting_name VARCHAR(64)) RETURNS VARCHAR(500) READS SQL DATA
BEGIN
  RETURN (SELECT value FROM assessment.swampd_test_setting WHERE name = setting_name);
END$$

CREATE TRIGGER assessment.execution_record_BINS BEFORE INSERT ON assessment.execution_record FOR EACH ROW
BEGIN
  SET NEW.create_user = left(user(), 25), NEW.create_date = now();
END$$

-- db-deploy §1.5: audit columns, and a soft delete of an incomplete run kills it (hard).
CREATE TRIGGER assessment.execution_record_BUPD BEFORE UPDATE ON assessment.execution_record FOR EACH ROW
BEGIN
  DECLARE rs VARCHAR(100);
  SET NEW.update_user = left(user(), 25), NEW.update_date = now();
  IF OLD.delete_date IS NULL AND NEW.delete_date IS NOT NULL AND NEW.complete_flag = 0 THEN
    SET NEW.launch_flag = 0;
    CALL assessment.kill_assessment_run(NEW.execution_record_uuid, 1, rs);
  END IF;
  IF NOT (NEW.status <=> OLD.status) THEN
    INSERT INTO assessment.swampd_test_status_log (run_uuid, old_status, new_status)
      VALUES (NEW.execution_record_uuid, OLD.status, NEW.status);
  END IF;
END$$

CREATE TRIGGER metric.metric_run_BUPD BEFORE UPDATE ON metric.metric_run FOR EACH ROW
BEGIN
  SET NEW.update_user = left(user(), 25), NEW.update_date = now();
  IF NOT (NEW.status <=> OLD.status) THEN
    INSERT INTO assessment.swampd_test_status_log (run_uuid, old_status, new_status)
      VALUES (NEW.metric_run_uuid, OLD.status, NEW.status);
  END IF;
END$$

CREATE TRIGGER assessment.assessment_result_BINS BEFORE INSERT ON assessment.assessment_result FOR EACH ROW
BEGIN
  SET NEW.create_user = left(user(), 25), NEW.create_date = now();
  SET NEW.tool_uuid = (SELECT tv.tool_uuid FROM tool_shed.tool_version tv
                        WHERE tv.tool_version_uuid = NEW.tool_version_uuid);
END$$

-- db-deploy §1.9 and swamp-lifecycle §5.10: one field per call; an unknown field is an
-- error (the CASE has no ELSE); M- ids go to metric.metric_run.
CREATE PROCEDURE assessment.update_execution_run_status(IN execution_record_uuid_in VARCHAR(45),
                                                        IN field_name_in VARCHAR(45),
                                                        IN field_value_in VARCHAR(128),
                                                        OUT return_string VARCHAR(100))
BEGIN
  DECLARE n INT;
  IF execution_record_uuid_in LIKE 'M-%' THEN
    SELECT count(*) INTO n FROM metric.metric_run WHERE metric_run_uuid = execution_record_uuid_in;
    IF n = 1 THEN
      CASE field_name_in
        WHEN 'status' THEN UPDATE metric.metric_run SET status = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'execute_node_architecture_id' THEN UPDATE metric.metric_run SET execute_node_architecture_id = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'lines_of_code' THEN UPDATE metric.metric_run SET code_lines = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'cpu_utilization' THEN UPDATE metric.metric_run SET cpu_utilization = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'vm_password' THEN UPDATE metric.metric_run SET vm_password = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'vm_hostname' THEN UPDATE metric.metric_run SET vm_hostname = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'vm_username' THEN UPDATE metric.metric_run SET vm_username = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'vm_image' THEN UPDATE metric.metric_run SET vm_image = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'vm_ip_address' THEN UPDATE metric.metric_run SET vm_ip_address = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'tool_filename' THEN UPDATE metric.metric_run SET tool_filename = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'run_date' THEN UPDATE metric.metric_run SET run_date = field_value_in,
                                    queued_duration = timediff(field_value_in, create_date) WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'completion_date' THEN UPDATE metric.metric_run SET completion_date = field_value_in,
                                    execution_duration = timediff(field_value_in, run_date) WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'slot_size_start' THEN UPDATE metric.metric_run SET slot_size_start = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
        WHEN 'slot_size_end' THEN UPDATE metric.metric_run SET slot_size_end = field_value_in WHERE metric_run_uuid = execution_record_uuid_in;
      END CASE;
      UPDATE metric.metric_run SET vm_password = NULL
       WHERE metric_run_uuid = execution_record_uuid_in AND status LIKE 'Finished%';
      SET return_string = 'SUCCESS';
    ELSE
      SET return_string = 'ERROR: Record Not Found';
    END IF;
  ELSE
    SELECT count(*) INTO n FROM assessment.execution_record WHERE execution_record_uuid = execution_record_uuid_in;
    IF n = 1 THEN
      CASE field_name_in
        WHEN 'status' THEN UPDATE assessment.execution_record SET status = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'execute_node_architecture_id' THEN UPDATE assessment.execution_record SET execute_node_architecture_id = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'lines_of_code' THEN UPDATE assessment.execution_record SET code_lines = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'cpu_utilization' THEN UPDATE assessment.execution_record SET cpu_utilization = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'vm_password' THEN UPDATE assessment.execution_record SET vm_password = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'vm_hostname' THEN UPDATE assessment.execution_record SET vm_hostname = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'vm_username' THEN UPDATE assessment.execution_record SET vm_username = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'vm_image' THEN UPDATE assessment.execution_record SET vm_image = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'vm_ip_address' THEN UPDATE assessment.execution_record SET vm_ip_address = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'tool_filename' THEN UPDATE assessment.execution_record SET tool_filename = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'run_date' THEN UPDATE assessment.execution_record SET run_date = field_value_in,
                                    queued_duration = timediff(field_value_in, create_date) WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'completion_date' THEN UPDATE assessment.execution_record SET completion_date = field_value_in,
                                    execution_duration = timediff(field_value_in, run_date) WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'slot_size_start' THEN UPDATE assessment.execution_record SET slot_size_start = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
        WHEN 'slot_size_end' THEN UPDATE assessment.execution_record SET slot_size_end = field_value_in WHERE execution_record_uuid = execution_record_uuid_in;
      END CASE;
      UPDATE assessment.execution_record SET vm_password = NULL
       WHERE execution_record_uuid = execution_record_uuid_in AND status LIKE 'Finished%';
      SET return_string = 'SUCCESS';
    ELSE
      SET return_string = 'ERROR: Record Not Found';
    END IF;
  END IF;
END$$

-- What assessment.insert_results hands M- ids to.  SWAMP's copies the result with
-- sys_exec (mkdir, cp, chmod) before the update; swampd stores MRun results with a
-- direct UPDATE of metric_run (swamp-assessment.md §3.6), so this one only updates.
CREATE PROCEDURE metric.insert_results(IN metric_run_uuid_in VARCHAR(45), IN result_path_in VARCHAR(200),
                                       IN result_checksum_in VARCHAR(200), IN status_out_in VARCHAR(3000),
                                       IN status_out_error_msg_in VARCHAR(200), OUT return_string VARCHAR(100))
BEGIN
  DECLARE n INT;
  SELECT count(*) INTO n FROM metric.metric_run WHERE metric_run_uuid = metric_run_uuid_in;
  IF n = 1 THEN
    UPDATE metric.metric_run SET file_host = 'SWAMP', result_path = result_path_in, result_checksum = result_checksum_in,
           status_out = status_out_in, status_out_error_msg = status_out_error_msg_in
     WHERE metric_run_uuid = metric_run_uuid_in;
    SET return_string = 'SUCCESS';
  ELSE
    SET return_string = 'ERROR: Record Not Found';
  END IF;
END$$

-- swamp-assessment.md §3.2: one assessment_result row, names denormalised, weakness -1 as NULL;
-- then code_lines when lines_of_code_in is not NULL.
CREATE PROCEDURE assessment.insert_results(IN execution_record_uuid_in VARCHAR(45),
                                           IN assessment_result_uuid_in VARCHAR(45),
                                           IN result_path_in VARCHAR(200),
                                           IN result_checksum_in VARCHAR(200),
                                           IN source_archive_path_in VARCHAR(200),
                                           IN source_archive_checksum_in VARCHAR(200),
                                           IN log_path_in VARCHAR(200),
                                           IN log_checksum_in VARCHAR(200),
                                           IN weakness_cnt_in INT,
                                           IN lines_of_code_in INT,
                                           IN status_out_in VARCHAR(3000),
                                           IN status_out_error_msg_in VARCHAR(200),
                                           OUT return_string VARCHAR(100))
BEGIN
  DECLARE n INT;
  IF execution_record_uuid_in LIKE 'M-%' THEN
    CALL metric.insert_results(execution_record_uuid_in, result_path_in, result_checksum_in,
                               status_out_in, status_out_error_msg_in, return_string);
  ELSE
    SELECT count(*) INTO n FROM assessment.execution_record WHERE execution_record_uuid = execution_record_uuid_in;
    IF n = 1 THEN
      INSERT INTO assessment.assessment_result
        (assessment_result_uuid, execution_record_uuid, project_uuid, weakness_cnt, file_host, file_path, checksum,
         source_archive_path, source_archive_checksum, log_path, log_checksum, status_out, status_out_error_msg,
         platform_name, platform_version, tool_name, tool_version, package_name, package_version,
         platform_version_uuid, tool_version_uuid, package_version_uuid, policy_code,
         run_date, execute_node_architecture_id, vm_hostname, vm_ip_address)
      SELECT assessment_result_uuid_in, er.execution_record_uuid, er.project_uuid,
             IF(weakness_cnt_in = -1, NULL, weakness_cnt_in), 'SWAMP', result_path_in, result_checksum_in,
             source_archive_path_in, source_archive_checksum_in, log_path_in, log_checksum_in,
             status_out_in, status_out_error_msg_in,
             plat.name, plv.version_string, t.name, tv.version_string, pkg.name, pv.version_string,
             er.platform_version_uuid, er.tool_version_uuid, er.package_version_uuid, t.policy_code,
             er.run_date, er.execute_node_architecture_id, er.vm_hostname, er.vm_ip_address
        FROM assessment.execution_record er
        LEFT JOIN platform_store.platform_version plv ON plv.platform_version_uuid = er.platform_version_uuid
        LEFT JOIN platform_store.platform plat ON plat.platform_uuid = plv.platform_uuid
        LEFT JOIN tool_shed.tool_version tv ON tv.tool_version_uuid = er.tool_version_uuid
        LEFT JOIN tool_shed.tool t ON t.tool_uuid = tv.tool_uuid
        LEFT JOIN package_store.package_version pv ON pv.package_version_uuid = er.package_version_uuid
        LEFT JOIN package_store.package pkg ON pkg.package_uuid = pv.package_uuid
       WHERE er.execution_record_uuid = execution_record_uuid_in;
      IF lines_of_code_in IS NOT NULL THEN
        UPDATE assessment.execution_record SET code_lines = lines_of_code_in
         WHERE execution_record_uuid = execution_record_uuid_in;
      END IF;
      SET return_string = 'SUCCESS';
    ELSE
      SET return_string = 'ERROR: Record Not Found';
    END IF;
  END IF;
END$$

-- db-deploy §1.4: passes any kind of uuid to kill_run; logs the command; SUCCESS means dispatched.
CREATE PROCEDURE assessment.kill_assessment_run(IN execution_record_uuid_in VARCHAR(45),
                                                IN hard_kill_flag_in VARCHAR(45),
                                                OUT return_string VARCHAR(100))
BEGIN
  DECLARE cmd TEXT;
  DECLARE cmd_return INT;
  SET cmd = concat(' ', assessment.swampd_setting('kill_run_cmd'),
                   ' --execution_record_uuid ', ifnull(assessment.swampd_quote(execution_record_uuid_in), char(39, 39)),
                   ' --hard ', ifnull(assessment.swampd_quote(hard_kill_flag_in), char(39, 39)));
  INSERT INTO assessment.sys_exec_cmd_log (cmd, caller) VALUES (cmd, 'kill_assessment_run');
  SET cmd_return = sys_exec(cmd);
  IF cmd_return <> 0 THEN
    SET return_string = 'ERROR';
  ELSE
    SET return_string = 'SUCCESS';
  END IF;
END$$

CREATE PROCEDURE assessment.validate_execution_record(IN execution_record_uuid_in VARCHAR(45),
                                                      OUT return_code VARCHAR(100))
BEGIN
  SET return_code = assessment.swampd_setting('validate_answer');
END$$

-- db-deploy §1.7: counter + 1 and the countdown (SWAMP: 20, about 60 s at one tick per 3 s);
-- the new counter, or -1.
CREATE PROCEDURE assessment.increment_launch_counter(IN execution_record_uuid_in VARCHAR(45),
                                                     IN launch_counter_in INT,
                                                     OUT launch_counter_out INT)
BEGIN
  DECLARE n INT;
  SELECT count(*) INTO n FROM assessment.execution_record WHERE execution_record_uuid = execution_record_uuid_in;
  IF n = 1 THEN
    UPDATE assessment.execution_record
       SET launch_counter = launch_counter_in + 1,
           launch_countdown = CAST(assessment.swampd_setting('launch_countdown') AS UNSIGNED)
     WHERE execution_record_uuid = execution_record_uuid_in;
    SET launch_counter_out = launch_counter_in + 1;
  ELSE
    SET launch_counter_out = -1;
  END IF;
END$$

-- db-deploy §1.6: the launch shell-out; the caller only tests the wait status for 0.
CREATE PROCEDURE assessment.execute_execution_record(IN execution_record_uuid_in VARCHAR(45),
                                                     OUT return_code INT)
BEGIN
  DECLARE cmd TEXT;
  SET cmd = concat(assessment.swampd_setting('execute_execution_record_cmd'), ' ',
                   assessment.swampd_quote(execution_record_uuid_in));
  SET return_code = sys_exec(cmd);
  INSERT INTO assessment.swampd_test_exec_log (cmd, return_code) VALUES (cmd, return_code);
END$$

-- db-deploy §1.7: every execution_record with launch_flag = 1, SWAMP's launch counter and countdown.
CREATE PROCEDURE assessment.process_execution_records()
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE rec_uuid VARCHAR(45);
  DECLARE flag INT;
  DECLARE counter INT;
  DECLARE countdown INT;
  DECLARE validation VARCHAR(100);
  DECLARE new_counter INT;
  DECLARE exec_return INT;
  DECLARE records CURSOR FOR
    SELECT execution_record_uuid FROM assessment.execution_record WHERE launch_flag = 1 ORDER BY execution_record_id;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;

  UPDATE assessment.system_status SET value = 'Y', update_date = now()
   WHERE status_key = 'CURRENTLY_PROCESSING_EXECUTION_RECORDS';
  OPEN records;
  each_record: LOOP
    FETCH records INTO rec_uuid;
    IF done = 1 THEN
      LEAVE each_record;
    END IF;
    -- read the row again: it may have changed since the cursor opened (aggregates: always one row)
    SELECT max(launch_flag), max(launch_counter), max(launch_countdown) INTO flag, counter, countdown
      FROM assessment.execution_record WHERE execution_record_uuid = rec_uuid;
    IF flag IS NULL OR flag <> 1 THEN
      ITERATE each_record;
    ELSEIF counter >= 15 THEN
      UPDATE assessment.execution_record SET launch_flag = 0, complete_flag = 1, status = 'Failed to launch'
       WHERE execution_record_uuid = rec_uuid;
    ELSEIF countdown > 0 THEN
      UPDATE assessment.execution_record SET launch_countdown = countdown - 1
       WHERE execution_record_uuid = rec_uuid;
    ELSE
      CALL assessment.validate_execution_record(rec_uuid, validation);
      IF NOT (validation <=> 'Y') THEN
        UPDATE assessment.execution_record SET status = ifnull(validation, 'Error: not validated'),
               launch_flag = 0, complete_flag = 1
         WHERE execution_record_uuid = rec_uuid;
      ELSE
        CALL assessment.increment_launch_counter(rec_uuid, counter, new_counter);
        IF new_counter <> -1 THEN
          CALL assessment.execute_execution_record(rec_uuid, exec_return);
          IF exec_return = 0 THEN
            UPDATE assessment.execution_record SET status = 'SUBMITTING TO HTCONDOR'
             WHERE execution_record_uuid = rec_uuid;
          END IF;
        ELSE
          UPDATE assessment.execution_record SET status = 'FAILURE TO INCREMENT LAUNCH COUNTER'
           WHERE execution_record_uuid = rec_uuid;
        END IF;
      END IF;
    END IF;
  END LOOP;
  CLOSE records;
  UPDATE assessment.system_status SET value = 'N', update_date = now()
   WHERE status_key = 'CURRENTLY_PROCESSING_EXECUTION_RECORDS';
END$$

-- db-deploy §1.7: every 3 s, unless a run is still going (younger than 5 minutes).
CREATE EVENT assessment.process_execution_records ON SCHEDULE EVERY 3 SECOND DO
BEGIN
  DECLARE running VARCHAR(500);
  DECLARE since TIMESTAMP;
  SELECT max(value), max(update_date) INTO running, since
    FROM assessment.system_status WHERE status_key = 'CURRENTLY_PROCESSING_EXECUTION_RECORDS';
  IF running = 'Y' AND since > now() - INTERVAL 5 MINUTE THEN
    INSERT INTO assessment.sys_exec_cmd_log (cmd, caller)
      VALUES ('process_execution_records skipped: the previous run is still going', 'process_execution_records');
  ELSE
    IF running = 'Y' THEN
      INSERT INTO assessment.sys_exec_cmd_log (cmd, caller)
        VALUES ('process_execution_records overran 5 minutes: flag reset', 'process_execution_records');
      UPDATE assessment.system_status SET value = 'N', update_date = now()
       WHERE status_key = 'CURRENTLY_PROCESSING_EXECUTION_RECORDS';
    END IF;
    CALL assessment.process_execution_records();
  END IF;
END$$

DELIMITER ;
